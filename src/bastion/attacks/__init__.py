"""Black-box attacks through the attacker's real access: evasion, extraction, membership.

Attacks reach a model only through an `Oracle` (over the shared query ledger)
and report `AttackResult`s that `to_finding` turns into Findings; see
docs/attacks.md.
"""

from bastion.attacks.base import Attack, AttackData, AttackKind, AttackResult, Norm
from bastion.attacks.campaign import CampaignRun, run_campaign
from bastion.attacks.dataset import load_data
from bastion.attacks.oracle import Access, ConstraintViolation, Oracle
from bastion.attacks.space import Constraints, Domain, InputSpace
from bastion.attacks.verdict import to_finding

__all__ = [
    "Access",
    "Attack",
    "AttackData",
    "AttackKind",
    "AttackResult",
    "CampaignRun",
    "ConstraintViolation",
    "Constraints",
    "Domain",
    "InputSpace",
    "Norm",
    "Oracle",
    "load_data",
    "run_campaign",
    "to_finding",
]
