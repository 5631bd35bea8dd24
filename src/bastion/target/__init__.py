"""How bastion reaches a model: in-process or over HTTP, always through a ledger."""

from bastion.target.base import OutputKind, QueryResult, Target, TargetInfo
from bastion.target.ledger import Ledger, LedgerStats, parse_rate
from bastion.target.local import CallableTarget, SklearnTarget

__all__ = [
    "CallableTarget",
    "Ledger",
    "LedgerStats",
    "OutputKind",
    "QueryResult",
    "SklearnTarget",
    "Target",
    "TargetInfo",
    "parse_rate",
]
