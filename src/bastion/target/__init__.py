"""How bastion reaches a model: in-process or over HTTP, always through a ledger."""

from bastion.target.base import OutputKind, QueryResult, Target, TargetInfo
from bastion.target.dialects import JsonMapping
from bastion.target.http import HttpOptions
from bastion.target.ledger import Ledger, LedgerStats, parse_rate
from bastion.target.local import CallableTarget, SklearnTarget
from bastion.target.remote import HttpTarget, json_target, oip_target

__all__ = [
    "CallableTarget",
    "HttpOptions",
    "HttpTarget",
    "JsonMapping",
    "Ledger",
    "LedgerStats",
    "OutputKind",
    "QueryResult",
    "SklearnTarget",
    "Target",
    "TargetInfo",
    "json_target",
    "oip_target",
    "parse_rate",
]
