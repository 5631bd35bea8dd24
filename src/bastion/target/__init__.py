"""How bastion reaches a model: in-process or over HTTP, always through a ledger."""

from bastion.target.base import OutputKind, QueryResult, Target, TargetInfo

__all__ = ["OutputKind", "QueryResult", "Target", "TargetInfo"]
