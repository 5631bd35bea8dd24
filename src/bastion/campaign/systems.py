"""Many systems in one run: one task per manifest, one summary Report for all of them.

Each system is assessed on a worker by the per-system function the audit
exposes (`bastion.audit.audit`) when it is installed, and otherwise by the
threat model plus probes of the manifest's live endpoints. Manifests are
validated in the driver first, so a typo in the tenth file stops the run
before any endpoint is touched. The summary keeps every system's findings and
adds a per-system table to the run notes.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.campaign.executor import Executor, Progress
from bastion.errors import OperationalError, UsageError
from bastion.findings import Finding, Report, RunInfo, Severity
from bastion.probes.base import ProbeSettings

__all__ = ["SystemResult", "SystemTask", "campaign_report", "run_campaign"]


@dataclass(frozen=True)
class SystemResult:
    manifest: str
    name: str
    report: Report
    elapsed_s: float


def _per_system_audit(probe: bool) -> Any | None:
    """`bastion.audit.audit(path, AuditOptions(...))` when the audit is part of this install.

    Without `probe`, only the stages that send nothing to an endpoint run.
    """
    try:
        module = importlib.import_module("bastion.audit")
    except ImportError:
        return None
    audit, options = getattr(module, "audit", None), getattr(module, "AuditOptions", None)
    if audit is None or options is None:
        return None

    offline = {"stages": ("threats", "scan")} if not probe else {}

    def run(path: Path) -> Report:
        report: Report = audit(path, options(**offline))
        return report

    return run


def _threats_and_probes(path: Path, settings: ProbeSettings | None, probe: bool) -> Report:
    from bastion.manifest import load_manifest
    from bastion.probes.endpoints import endpoints_from_manifest
    from bastion.probes.runner import probe_report
    from bastion.threatmodel import threat_model

    manifest = load_manifest(path)
    threats = threat_model(manifest)
    endpoints = endpoints_from_manifest(manifest) if probe else []
    if not endpoints:
        return threats
    try:
        probed = probe_report(endpoints, settings, subject=manifest.system.name)
    except OperationalError as exc:
        # one unreachable system must not sink a campaign over many: say so, keep its threats
        note = f"endpoints not probed: {exc}"
        return threats.model_copy(
            update={"run": threats.run.model_copy(update={"notes": (*threats.run.notes, note)})}
        )
    run = threats.run.model_copy(
        update={
            "analysers": (*threats.run.analysers, *probed.run.analysers),
            "notes": (*threats.run.notes, *probed.run.notes),
        }
    )
    findings = tuple(sorted((*threats.findings, *probed.findings), key=Finding.sort_key))
    return threats.model_copy(update={"findings": findings, "run": run})


@dataclass(frozen=True)
class SystemTask:
    """Assess one system described by a manifest."""

    manifest: str
    probe: bool = True
    settings: ProbeSettings | None = None

    @property
    def key(self) -> str:
        return self.manifest

    def __call__(self) -> SystemResult:
        start = time.perf_counter()
        path = Path(self.manifest)
        report = self._assess(path, self.probe)
        return SystemResult(
            self.manifest, report.run.subject or path.stem, report, time.perf_counter() - start
        )

    def _assess(self, path: Path, probe: bool) -> Report:
        audit = _per_system_audit(probe)
        if audit is None:
            return _threats_and_probes(path, self.settings, probe)
        try:
            report: Report = audit(path)
        except OperationalError as exc:
            if not probe:
                raise
            # one unreachable system must not sink a campaign: its offline findings, and why
            offline = self._assess(path, probe=False)
            note = f"live stages not run: {exc}"
            run = offline.run.model_copy(update={"notes": (*offline.run.notes, note)})
            return offline.model_copy(update={"run": run})
        return report


_SEVERITIES = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO)


def campaign_report(results: Sequence[SystemResult], executor: Executor) -> Report:
    """All systems' findings, and one summary row per system in the run notes."""
    from bastion import __version__

    width = max([len(r.name) for r in results] + [6])
    head = f"{'system':<{width}}  findings  " + "  ".join(f"{s.value:>8}" for s in _SEVERITIES)
    notes = [head + "  seconds  manifest"]
    findings: list[Finding] = []
    analysers: dict[str, None] = {}
    details: list[str] = []
    for r in results:
        counts = r.report.counts()
        cells = "  ".join(f"{counts.get(s.value, 0):>8}" for s in _SEVERITIES)
        row = f"{r.name:<{width}}  {len(r.report.findings):>8}  {cells}"
        notes.append(f"{row}  {r.elapsed_s:>7.1f}  {r.manifest}")
        findings.extend(r.report.findings)
        analysers.update(dict.fromkeys(r.report.run.analysers))
        details.extend(f"{r.name}: {note}" for note in r.report.run.notes)
    notes.extend(details)  # the table first, then what each system's run noted
    notes.append(
        f"{len(results)} systems on the {executor.name} executor ({executor.workers} workers)"
    )
    run = RunInfo(
        version=__version__,
        command="campaign",
        subject=", ".join(r.name for r in results),
        analysers=tuple(analysers),
        suppressed=sum(r.report.run.suppressed for r in results),
        notes=tuple(notes),
    )
    return Report(findings=tuple(findings), run=run).sorted()


def run_campaign(
    manifests: Sequence[Path],
    executor: Executor,
    *,
    probe: bool = True,
    settings: ProbeSettings | None = None,
    progress: Progress | None = None,
    retries: int = 1,
) -> Report:
    """Assess every system in `manifests` on the executor; one summary Report."""
    from bastion.manifest import load_manifest

    if not manifests:
        raise UsageError("no manifests given", hint="bastion campaign SYSTEM.yaml [SYSTEM.yaml...]")
    for path in manifests:
        load_manifest(path)  # invalid manifests fail here, before any work (exit 2)
    tasks = [SystemTask(str(p), probe, settings) for p in manifests]
    results: list[SystemResult] = executor.map(tasks, progress=progress, retries=retries)
    return campaign_report(results, executor)
