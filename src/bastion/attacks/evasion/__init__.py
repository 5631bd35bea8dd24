"""Evasion attacks: decision-based, score-based and transfer."""

from bastion.attacks.evasion.engine import EvasionAttack

__all__ = ["EvasionAttack"]
