"""One scan as a library call: what `bastion scan` and the audit both run.

Paths may be files, directories or system manifests; manifests are replaced by
the artifacts they declare (with pin and declared-format checks), the built-in
scanner and every registered scanner plugin run, and one `Report` comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bastion.errors import PluginError
from bastion.findings import Finding, Report
from bastion.registry import registry
from bastion.scan.manifest_pins import Declared, expand_manifests, format_mismatches
from bastion.scan.plugin import ArtifactScanner, ModelArtifactScanner
from bastion.scan.results import findings_of, report_of
from bastion.scan.scanner import FileScan
from bastion.scan.source import ScanLimits

__all__ = ["run_scan"]


def run_scan(
    paths: Sequence[Path],
    limits: ScanLimits | None = None,
    *,
    digest: bool = True,
    executor: Any = None,
) -> tuple[Report, list[FileScan]]:
    """Scan `paths` (files, directories, manifests); the report and the per-file results."""
    declared: dict[str, Declared] = {}
    targets, findings = expand_manifests(paths, declared)
    builtin = ModelArtifactScanner(limits, digest=digest)
    if executor is not None:
        # One task per file on the campaign executor (local processes or Ray).
        from bastion.campaign.scantasks import scan_files

        builtin.last = scan_files(executor, targets, limits=limits)
        found = findings_of(builtin.last)
    else:
        found = builtin.scan(targets)
    findings = [*findings, *found, *format_mismatches(declared, builtin.last)]
    for name in registry("scanners").names():
        if name == builtin.name:
            continue
        plugin = registry("scanners").get(name)()
        if not isinstance(plugin, ArtifactScanner):
            raise PluginError(f"scanner {name!r} has no scan(paths) method")
        extra: list[Finding] = plugin.scan(targets)
        findings += extra
    report = report_of(builtin.last, command="scan", subject=" ".join(map(str, paths)))
    return report.model_copy(update={"findings": tuple(findings)}).sorted(), builtin.last
