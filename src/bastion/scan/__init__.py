"""Artifact and supply-chain scanning: model files, archives and client bundles, never loaded.

`Scanner().scan_paths(paths)` returns one `FileScan` per file with its verdict
(clean / suspicious / malicious / could-not-scan), the issues behind it and the
models it holds; `run_scan(paths)` is the whole `bastion scan` (manifests,
plugins) as one call returning a `Report`.
"""

from bastion.scan.rules import RULES, Issue, Rule, Verdict
from bastion.scan.run import run_scan
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
    "run_scan",
]
