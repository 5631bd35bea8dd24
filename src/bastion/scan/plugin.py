"""The scanner extension point: anything that turns paths into findings.

`bastion scan` runs every scanner in the registry's "scanners" capability (the
built-in model-artifact scanner plus third-party entry points
`bastion.scanners`), so a new format or a site-specific policy is one class.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from bastion.findings import Finding
from bastion.scan.results import findings_of
from bastion.scan.scanner import FileScan, Scanner
from bastion.scan.source import ScanLimits

__all__ = ["ArtifactScanner", "ModelArtifactScanner"]


@runtime_checkable
class ArtifactScanner(Protocol):
    name: str

    def scan(self, paths: Sequence[Path]) -> list[Finding]: ...


class ModelArtifactScanner:
    """The built-in scanner: model files, archives and bundles, read without loading."""

    name = "models"

    def __init__(self, limits: ScanLimits | None = None) -> None:
        self.scanner = Scanner(limits)
        self.last: list[FileScan] = []

    def scan(self, paths: Sequence[Path]) -> list[Finding]:
        self.last = self.scanner.scan_paths(paths)
        return findings_of(self.last)
