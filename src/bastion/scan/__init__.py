"""Artifact and supply-chain scanning: model files, archives and client bundles, never loaded.

`Scanner().scan_paths(paths)` returns one `FileScan` per file with its verdict
(clean / suspicious / malicious / could-not-scan), the issues behind it and the
models it holds; `findings_of(scans)` turns them into `Finding`s for reports.
"""

from bastion.scan.rules import RULES, Issue, Rule, Verdict
from bastion.scan.scanner import Artifact, FileScan, Scanner
from bastion.scan.source import ScanLimits

__all__ = [
    "RULES",
    "Artifact",
    "FileScan",
    "Issue",
    "Rule",
    "ScanLimits",
    "Scanner",
    "Verdict",
]
