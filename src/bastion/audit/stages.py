"""The stages of one assessment: threat rules, artifact scan, exposure probes, attacks.

Each stage is a function of the audit context returning a `StageResult`, so a
finished stage can be saved and skipped on `--resume`. Later stages read what
earlier ones observed (the attacks are chosen and sized from what the probes
measured), which is why the order is fixed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bastion.audit.rundir import StageResult
from bastion.errors import BudgetExhausted, TargetError, UsageError
from bastion.findings import Confidence, Finding, References, Series, Severity, Subject
from bastion.manifest import SystemManifest

__all__ = ["STAGES", "AuditContext", "AuditOptions"]

Progress = Callable[[str, int, int], None]

# Attacks an audit tries by default; the campaign keeps those the observed access allows.
DEFAULT_ATTACKS = (
    "hopskipjump-l2",
    "square-linf",
    "extraction-natural",
    "membership-loss",
    "membership-label-only",
)


@dataclass(frozen=True)
class AuditOptions:
    data: Path | None = None
    attacks: tuple[str, ...] = DEFAULT_ATTACKS
    budget: int = 20_000
    point_budget: int = 400
    points: int = 20
    time_limit_s: float = 600.0
    api_key: str | None = None
    # Attacks run as these principals in turn (an attacker with several accounts), so a
    # guard that blocked the probing principal does not stop the attacks by accident.
    attack_keys: tuple[str, ...] = ()
    against: str | None = None
    endpoint: str | None = None
    seed: int = 0
    stages: tuple[str, ...] = ("threats", "scan", "probes", "attacks")
    executor: str | None = None  # None: in this process; "local" or "ray": chunked tasks
    address: str | None = None
    workers: int | None = None

    def describe(self) -> dict[str, Any]:
        """What must not change between a run and its resume."""
        return {
            "data": str(self.data) if self.data else None,
            "attacks": list(self.attacks),
            "budget": self.budget,
            "point_budget": self.point_budget,
            "points": self.points,
            "against": self.against,
            "endpoint": self.endpoint,
            "seed": self.seed,
            "stages": list(self.stages),
            "executor": self.executor,
        }


@dataclass
class AuditContext:
    manifest: SystemManifest
    options: AuditOptions
    started: float = field(default_factory=time.monotonic)
    results: dict[str, StageResult] = field(default_factory=dict)
    progress: Progress | None = None

    @property
    def remaining_s(self) -> float:
        return self.options.time_limit_s - (time.monotonic() - self.started)

    @property
    def queries_spent(self) -> int:
        return sum(r.queries for r in self.results.values())

    def endpoints(self) -> list[Any]:
        from bastion.probes.endpoints import endpoints_from_manifest
        from bastion.target.http import HttpOptions

        options = HttpOptions(api_key=self.options.api_key)
        found = endpoints_from_manifest(self.manifest, options, self.options.endpoint)
        if self.options.against:
            from bastion.probes.endpoints import split_oip_url

            if len(found) != 1:
                raise UsageError(
                    "--against needs exactly one endpoint",
                    hint="choose it with --endpoint ID",
                )
            url = self.options.against
            if found[0].protocol == "oip":
                url, _ = split_oip_url(url)
            found = [replace(found[0], url=url)]
        return found


def _threats(ctx: AuditContext) -> StageResult:
    from bastion.threatmodel import threat_model

    report = threat_model(ctx.manifest)
    notes = (f"{report.run.suppressed} findings suppressed by assumptions",)
    return StageResult(stage="threats", findings=report.findings, notes=notes)


def _scan(ctx: AuditContext) -> StageResult:
    """The same scan as `bastion scan SYSTEM.yaml`: declared artifacts, bundles, pins."""
    if ctx.manifest.source_path is None:
        return StageResult(stage="scan", notes=("no manifest file to resolve artifact paths",))
    from bastion.scan.run import run_scan

    executor = None
    if ctx.options.executor is not None:
        from bastion.campaign import make_executor

        executor = make_executor(
            ctx.options.executor, workers=ctx.options.workers, address=ctx.options.address
        )
    report, scans = run_scan([Path(ctx.manifest.source_path)], executor=executor)
    notes = tuple(f"{s.path}: {s.verdict.value}" for s in scans)
    return StageResult(stage="scan", findings=report.findings, notes=notes)


def _probes(ctx: AuditContext) -> StageResult:
    from bastion.probes.runner import probe_endpoint

    findings: list[Finding] = []
    observations: dict[str, Any] = {}
    queries = 0
    notes: list[str] = []
    for endpoint in ctx.endpoints():
        run = probe_endpoint(endpoint, progress=ctx.progress)
        findings += run.findings
        key = endpoint.element_id or endpoint.infer_url
        observations[key] = run.observations
        queries += sum(run.requests.values())
        notes += [f"{key}: probe {name} stopped: {why}" for name, why in run.stopped.items()]
    if not observations:
        notes.append("no endpoint with a url to probe")
    return StageResult(
        stage="probes",
        findings=tuple(findings),
        notes=tuple(notes),
        data={"observations": observations},
        queries=queries,
    )


def _observed_rate(ctx: AuditContext, key: str) -> float | None:
    probes = ctx.results.get("probes")
    if probes is None:
        return None
    seen = probes.data.get("observations", {}).get(key, {}).get("rate_limit", {})
    if seen.get("limited") and seen.get("sustainable_rate_per_s"):
        return float(seen["sustainable_rate_per_s"])
    return None


def _attacks(ctx: AuditContext) -> StageResult:
    if ctx.options.data is None:
        return StageResult(stage="attacks", notes=("no --data given: attacks skipped",))
    from bastion.attacks.campaign import run_campaign
    from bastion.attacks.dataset import load_data
    from bastion.attacks.space import Domain
    from bastion.probes.endpoints import target_for
    from bastion.target import Ledger

    findings: list[Finding] = []
    series: list[Series] = []
    notes: list[str] = []
    spent = 0
    executor = None
    if ctx.options.executor is not None:
        from bastion.campaign import make_executor

        executor = make_executor(
            ctx.options.executor, workers=ctx.options.workers, address=ctx.options.address
        )
    for endpoint in ctx.endpoints():
        key = endpoint.element_id or endpoint.infer_url
        model = _served_model(ctx.manifest, endpoint.element_id)
        domain = getattr(getattr(model, "input", None), "domain", "tabular")
        data = load_data(
            ctx.options.data,
            domain=Domain(domain if domain in ("image", "tabular") else "tabular"),
            bounds=endpoint.bounds,
            shape=endpoint.input_shape,
            points=ctx.options.points,
            seed=ctx.options.seed,
        )
        radius = _radius(model, data)
        if radius:
            shown = ", ".join(f"{n.value} {v:.4g}" for n, v in radius.items())
            notes.append(f"{key}: evasion counts as success within {shown} of the original")
        rate = _observed_rate(ctx, key)
        # Severity is read at what one day at the observed rate allows per attacked point.
        realistic = None if rate is None else max(1, round(rate * 86_400))
        keys = ctx.options.attack_keys
        base_endpoint = endpoint
        for index, name in enumerate(ctx.options.attacks):
            if ctx.progress is not None:
                ctx.progress(f"{key}: {name}", index, len(ctx.options.attacks))
            if keys:
                key_options = replace(base_endpoint.options, api_key=keys[index % len(keys)])
                endpoint = replace(base_endpoint, options=key_options)
            left = ctx.options.budget - spent
            if left <= 0 or ctx.remaining_s <= 0:
                notes.append(f"{key}: {name} not run: global budget or time limit reached")
                continue
            # An attacker in a bounded audit does not wait out a long Retry-After.
            if executor is not None:
                spent += _distributed(
                    ctx, executor, endpoint, data, name, realistic, radius, findings, series, notes
                )
                continue
            ledger = Ledger(target_for(endpoint), budget=left, retries=1, max_wait_s=2.0)
            try:
                per = ctx.options.point_budget
                run = run_campaign(
                    ledger,
                    data,
                    [name],
                    budget=per,
                    seed=ctx.options.seed,
                    eps=radius or None,
                    realistic_budget=realistic,
                    subject=endpoint.subject(),
                )
                findings += run.findings
                series += run.series
                notes += [f"{key}: {n}" for n in run.notes]
            except UsageError as exc:
                notes.append(f"{key}: {name} skipped: {exc}")
            except BudgetExhausted:
                notes.append(f"{key}: {name} stopped at the global budget")
            except TargetError as exc:
                notes.append(f"{key}: {name} stopped by the endpoint: {exc}")
                findings.append(_stopped(name, endpoint.subject(), ledger.queries, exc))
            finally:
                spent += ledger.queries
                ledger.close()
    return StageResult(
        stage="attacks",
        findings=tuple(findings),
        series=tuple(series),
        notes=tuple(notes),
        queries=spent,
    )


def _distributed(
    ctx: AuditContext,
    executor: Any,
    endpoint: Any,
    data: Any,
    name: str,
    realistic: int | None,
    radius: dict[Any, float],
    findings: list[Finding],
    series: list[Series],
    notes: list[str],
) -> int:
    """One attack cut into seeded chunks on the executor; returns the queries it sent."""
    from bastion.campaign import EndpointSpec, run_attacks
    from bastion.errors import TaskFailed

    key = endpoint.element_id or endpoint.infer_url
    try:
        run = run_attacks(
            executor,
            EndpointSpec(endpoint),
            data,
            [name],
            budget=ctx.options.point_budget,
            seed=ctx.options.seed,
            eps=radius or None,
            realistic_budget=realistic,
            subject=endpoint.subject(),
        )
    except UsageError as exc:
        notes.append(f"{key}: {name} skipped: {exc}")
        return 0
    except TaskFailed as exc:
        notes.append(f"{key}: {name} stopped: {exc}")
        findings.append(_stopped(name, endpoint.subject(), 0, exc))
        return 0
    findings.extend(run.findings)
    series.extend(run.series)
    notes.extend(f"{key}: {n}" for n in run.notes)
    return run.queries


def _stopped(name: str, subject: Subject, queries: int, exc: Exception) -> Finding:
    """An attack the endpoint cut short: reported, with what it cost, as a failed attack."""
    from bastion.attacks.base import AttackKind
    from bastion.attacks.oracle import Access
    from bastion.attacks.verdict import RULES
    from bastion.registry import registry

    cls = registry("attacks").get(name)
    if cls.kind is AttackKind.EXTRACTION:
        rule = RULES["A201"]
    elif cls.kind is AttackKind.MEMBERSHIP:
        rule = RULES["A301"]
    else:
        rule = RULES["A101"] if cls.access is Access.LABEL else RULES["A102"]
    reason = str(exc).splitlines()[0][:300]
    return Finding(
        rule_id=rule.rule_id,
        title=rule.title,
        message=f"{name} was stopped by the endpoint after {queries} queries ({reason}); "
        "it achieved nothing measurable.",
        severity=Severity.INFO,
        confidence=Confidence.HIGH,
        analyser="attack",
        subject=subject,
        evidence={
            "attack": name,
            "stopped_by_endpoint": True,
            "queries_before_stop": queries,
            "reason": reason,
            "success_rate": 0.0,
        },
        references=References(atlas=rule.atlas, owasp=rule.owasp),
        mitigations=rule.mitigations,
        key=name,
    )


def _radius(model: Any, data: Any) -> dict[Any, float]:
    """Per norm, the evasion success radius: the manifest's, else read from the data."""
    from bastion.attacks.base import Norm
    from bastion.attacks.radius import success_radius

    declared = getattr(getattr(model, "input", None), "perturbation", None)
    out: dict[Any, float] = {}
    for norm in Norm:
        value = getattr(declared, norm.value, None) if declared is not None else None
        if value is None:
            value = success_radius(data, norm)
        if value is not None:
            out[norm] = float(value)
    return out


def _served_model(manifest: SystemManifest, endpoint_id: str | None) -> Any:
    if endpoint_id is None:
        return None
    element = manifest.element(endpoint_id)
    model_id = getattr(element, "model", None)
    return manifest.element(model_id) if model_id else None


STAGES: dict[str, Callable[[AuditContext], StageResult]] = {
    "threats": _threats,
    "scan": _scan,
    "probes": _probes,
    "attacks": _attacks,
}
