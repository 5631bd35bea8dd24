"""One assessment of a whole system → one Report, resumable and bounded.

Stages run in a fixed order (threats, scan, probes, attacks); each finished
stage is saved in the run directory before the next starts, so Ctrl-C or a
crash keeps what finished. The time limit and global query budget are shared
by all stages.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bastion import __version__
from bastion.audit.links import dedupe, link
from bastion.audit.rundir import RunDir, StageResult
from bastion.audit.stages import STAGES, AuditContext, AuditOptions
from bastion.errors import UsageError
from bastion.findings import Finding, Report, RunInfo, Series
from bastion.manifest import SystemManifest, load_manifest
from bastion.threatmodel.engine import system_data

__all__ = ["StageHook", "audit", "audit_manifest"]

StageHook = Callable[[str, str], None]  # (stage, "start" | "done" | "resumed")


def _inputs(path: Path, options: AuditOptions) -> dict[str, object]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"manifest": str(path), "sha256": digest, "options": options.describe()}


def audit_manifest(
    manifest: SystemManifest,
    options: AuditOptions,
    run_dir: RunDir | None = None,
    done: tuple[str, ...] = (),
    on_stage: StageHook | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Report:
    unknown = [s for s in options.stages if s not in STAGES]
    if unknown:
        raise UsageError(f"unknown audit stage(s): {', '.join(unknown)}", hint=", ".join(STAGES))
    ctx = AuditContext(manifest=manifest, options=options, progress=progress)
    started = time.monotonic()
    for name in STAGES:
        if name not in options.stages:
            continue
        if run_dir is not None and name in done:
            ctx.results[name] = run_dir.load(name)
            if on_stage:
                on_stage(name, "resumed")
            continue
        if on_stage:
            on_stage(name, "start")
        t0 = time.monotonic()
        result = STAGES[name](ctx)
        result = result.model_copy(update={"elapsed_s": round(time.monotonic() - t0, 3)})
        ctx.results[name] = result
        if run_dir is not None:
            run_dir.save(result)
        if on_stage:
            on_stage(name, "done")
    return _report(manifest, ctx.results, options, time.monotonic() - started)


def _measured_endpoints(results: dict[str, StageResult]) -> set[str]:
    reached: set[str] = set()
    probes = results.get("probes")
    if probes is not None:
        reached |= set(probes.data.get("observations", {}))
    attacks = results.get("attacks")
    if attacks is not None:
        reached |= {f.subject.id for f in attacks.findings}
    return reached


def _report(
    manifest: SystemManifest,
    results: dict[str, StageResult],
    options: AuditOptions,
    elapsed: float,
) -> Report:
    findings: list[Finding] = []
    series: list[Series] = []
    notes: list[str] = []
    for name, result in results.items():
        findings += result.findings
        series += result.series
        notes += [f"[{name}] {n}" for n in result.notes]
        notes.append(f"[{name}] {len(result.findings)} findings in {result.elapsed_s:.1f}s")
    spent = sum(r.queries for r in results.values())
    notes.append(f"{spent} queries sent to live endpoints (budget {options.budget})")
    linked = link(dedupe(findings), manifest, _measured_endpoints(results))
    linked.sort(key=Finding.sort_key)
    subject = manifest.system.name + (f" via {options.against}" if options.against else "")
    run = RunInfo(
        version=__version__,
        command="audit",
        subject=subject,
        analysers=tuple(
            {"threats": "threatmodel", "scan": "scan", "probes": "probe", "attacks": "attack"}[n]
            for n in results
        ),
        notes=tuple(notes),
        finished=datetime.now(UTC),
    )
    return Report(
        findings=tuple(linked), run=run, series=tuple(series), system=system_data(manifest)
    )


def audit(
    path: Path,
    options: AuditOptions,
    run_dir: Path | None = None,
    resume: bool = False,
    on_stage: StageHook | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Report:
    """Audit the system described by the manifest at `path`."""
    manifest = load_manifest(path)
    store = None
    done: tuple[str, ...] = ()
    if run_dir is not None:
        store = RunDir(run_dir, _inputs(path, options))
        done = tuple(store.start(resume))
    elif resume:
        raise UsageError("--resume needs --run-dir", hint="the directory of the interrupted run")
    return audit_manifest(manifest, options, store, done, on_stage, progress)
