"""bastion: systems security for deployed machine learning.

describe (manifest) → assess (threat rules, scans, probes, attacks) →
mitigate (guard, signing) → verify (re-audit, before/after).
"""

from bastion.errors import BastionError
from bastion.findings import (
    Confidence,
    Finding,
    Location,
    References,
    Report,
    RunInfo,
    Series,
    Severity,
    Subject,
    SubjectKind,
)

__version__ = "0.1.0"

__all__ = [
    "BastionError",
    "Confidence",
    "Finding",
    "Location",
    "References",
    "Report",
    "RunInfo",
    "Series",
    "Severity",
    "Subject",
    "SubjectKind",
    "__version__",
]
