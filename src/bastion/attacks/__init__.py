"""Black-box attacks through the attacker's real access: evasion, extraction, membership."""

from bastion.attacks.base import Attack, AttackData, AttackKind, AttackResult, Norm
from bastion.attacks.oracle import Access, ConstraintViolation, Oracle
from bastion.attacks.space import Constraints, Domain, InputSpace

__all__ = [
    "Access",
    "Attack",
    "AttackData",
    "AttackKind",
    "AttackResult",
    "ConstraintViolation",
    "Constraints",
    "Domain",
    "InputSpace",
    "Norm",
    "Oracle",
]
