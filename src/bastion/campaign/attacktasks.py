"""An attack run cut into independent tasks: per attack, and per chunk of points for evasion.

Evasion attacks each attacked point on its own budget, so a chunk of points is
a task of its own, seeded from the run's seed and the chunk's number (never
from the worker that runs it). Chunks are cut by `chunk_size`, not by the
number of workers, so one, two or two hundred workers give the same result.
Extraction and membership use the whole data at once and stay one task each.
The driver merges the chunks of an attack back into one `AttackResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from bastion.attacks.base import AttackData, AttackKind, AttackResult
from bastion.attacks.campaign import CampaignRun, plan
from bastion.attacks.evasion.engine import budget_grid
from bastion.attacks.oracle import Oracle
from bastion.attacks.radius import Radius, radius_for
from bastion.attacks.verdict import to_finding
from bastion.campaign.executor import Executor, Progress
from bastion.errors import BudgetExhausted, UsageError
from bastion.findings import Series, Subject
from bastion.registry import registry
from bastion.target.base import OutputKind, Target
from bastion.target.ledger import Ledger

__all__ = [
    "AttackTask",
    "EndpointSpec",
    "ModelSpec",
    "TargetSpec",
    "attack_tasks",
    "chunk_seed",
    "merge_chunks",
    "run_attacks",
]


class TargetSpec(Protocol):
    """How a worker reaches the model: picklable, opened inside the worker."""

    def open(self) -> Target: ...


@dataclass(frozen=True)
class EndpointSpec:
    """A deployed endpoint, as the probes resolved it (URL, protocol, credentials)."""

    endpoint: Any  # bastion.probes.base.Endpoint

    def open(self) -> Target:
        from bastion.probes.endpoints import target_for

        return target_for(self.endpoint)


@dataclass(frozen=True)
class ModelSpec:
    """An in-process model built by a picklable factory (benchmarks, tests, notebooks)."""

    factory: Callable[[], Any]
    output: str = "scores"

    def open(self) -> Target:
        from bastion.target.local import SklearnTarget

        return SklearnTarget(self.factory(), output=OutputKind(self.output))


def chunk_seed(seed: int, chunk: int) -> int:
    """A seed for one chunk that depends only on the run's seed and the chunk's number."""
    return int(np.random.SeedSequence([seed, chunk]).generate_state(1)[0])


def _rows(data: AttackData, start: int, stop: int) -> AttackData:
    def cut(a: Any) -> Any:
        return None if a is None else a[start:stop]

    return replace(data, x=data.x[start:stop], y=cut(data.y), targets=cut(data.targets))


@dataclass(frozen=True)
class AttackTask:
    """One attack on one chunk of the attacker's data."""

    target: TargetSpec
    attack: str
    data: AttackData
    budget: int
    seed: int
    chunk: int = 0
    eps: float | None = None
    batch_size: int = 4096

    @property
    def key(self) -> str:
        return f"{self.attack}#{self.chunk}"

    def __call__(self) -> AttackResult | str:
        """The result, or a note (str) when the attack's budget ran out."""
        cls = registry("attacks").get(self.attack)
        evasion = cls.kind is AttackKind.EVASION
        attack = cls(eps=self.eps) if self.eps is not None and evasion else cls()
        target = self.target.open()
        try:
            ledger = Ledger(target)
            oracle = Oracle(
                ledger, access=cls.access, space=self.data.space, batch_size=self.batch_size
            )
            try:
                result: AttackResult = attack.run(
                    oracle, self.data, budget=self.budget, seed=self.seed
                )
            except BudgetExhausted as exc:
                return f"{self.key} stopped: {exc}"
            return result
        finally:
            target.close()


def attack_tasks(
    target: TargetSpec,
    data: AttackData,
    names: Sequence[str],
    *,
    budget: int,
    seed: int = 0,
    eps: Radius = None,
    chunk_size: int = 16,
    batch_size: int = 4096,
) -> tuple[list[AttackTask], list[str]]:
    """The tasks of one attack run, and a note for each attack skipped and why."""
    if chunk_size < 1:
        raise UsageError(f"chunk size must be at least 1, got {chunk_size}")
    if budget < 1:
        raise UsageError(f"--budget must be at least 1, got {budget}")
    opened = target.open()
    try:
        access = Oracle(opened).access
    finally:
        opened.close()
    chosen, notes = plan(names, access, data)
    tasks: list[AttackTask] = []
    for name, cls in chosen:
        radius = radius_for(eps, cls)
        common: dict[str, Any] = {"budget": budget, "eps": radius, "batch_size": batch_size}
        if cls.kind is not AttackKind.EVASION:
            tasks.append(AttackTask(target, name, data, seed=seed, **common))
            continue
        n = int(data.x.shape[0])
        for chunk, start in enumerate(range(0, n, chunk_size)):
            part = _rows(data, start, min(start + chunk_size, n))
            tasks.append(
                AttackTask(target, name, part, seed=chunk_seed(seed, chunk), chunk=chunk, **common)
            )
    return tasks, notes


def _cat(parts: Sequence[AttackResult], field: str) -> Any:
    arrays = [getattr(p, field) for p in parts]
    return None if any(a is None for a in arrays) else np.concatenate(arrays)


def merge_chunks(parts: Sequence[AttackResult], seed: int) -> AttackResult:
    """One evasion result from its chunks: per-point arrays joined, rates recomputed."""
    first = parts[0]
    if len(parts) == 1 and first.kind is not AttackKind.EVASION:
        return first
    found = np.concatenate([p.success for p in parts if p.success is not None])
    hit = _cat(parts, "queries")
    l2 = _cat(parts, "l2")
    n = int(found.shape[0])
    budget = int(first.metrics.get("budget_per_point", 1))
    grid = budget_grid(budget)
    curve = tuple(float(np.mean(found & (hit <= b))) if n else 0.0 for b in grid)
    old = first.series[0] if first.series else None
    series = Series(
        name=old.name if old else f"{first.attack}: success vs queries",
        x_label="queries per point",
        y_label="success rate",
        x=tuple(float(g) for g in grid),
        y=curve,
        sample_size=n,
        group=first.attack,
    )
    metrics = dict(first.metrics)
    for name in metrics:  # attack-specific extras: summed (surrogate queries) or kept
        if name not in ("success_rate", "adversarial_rate", "budget_per_point", "eps"):
            metrics[name] = float(sum(p.metrics.get(name, 0.0) for p in parts))
    metrics["success_rate"] = float(found.mean()) if n else 0.0
    if l2 is not None:
        metrics["adversarial_rate"] = float(np.mean(~np.isnan(l2))) if n else 0.0
    return replace(
        first,
        n=n,
        total_queries=sum(p.total_queries for p in parts),
        wall_time_s=sum(p.wall_time_s for p in parts),
        metrics=metrics,
        success=found,
        queries=hit,
        spent=_cat(parts, "spent"),
        l2=l2,
        linf=_cat(parts, "linf"),
        adversarials=_cat(parts, "adversarials"),
        series=(series,),
        params={**first.params, "seed": seed, "chunks": len(parts)},
    )


def run_attacks(
    executor: Executor,
    target: TargetSpec,
    data: AttackData,
    names: Sequence[str],
    *,
    budget: int,
    seed: int = 0,
    eps: Radius = None,
    chunk_size: int = 16,
    realistic_budget: int | None = None,
    subject: Subject | None = None,
    progress: Progress | None = None,
    retries: int = 2,
    batch_size: int = 4096,
) -> CampaignRun:
    """`bastion.attacks.run_campaign`, with the work spread over an executor."""
    tasks, notes = attack_tasks(
        target,
        data,
        names,
        budget=budget,
        seed=seed,
        eps=eps,
        chunk_size=chunk_size,
        batch_size=batch_size,
    )
    if not tasks:
        raise UsageError(
            "none of the requested attacks can run against this target with this data",
            hint="; ".join(notes) or "name at least one attack",
        )
    outputs = executor.map(tasks, progress=progress, retries=retries)
    run = CampaignRun(notes=list(notes))
    by_attack: dict[str, list[AttackResult]] = {}
    for task, out in zip(tasks, outputs, strict=True):
        if isinstance(out, str):
            run.notes.append(out)
        else:
            by_attack.setdefault(task.attack, []).append(out)
    for parts in by_attack.values():
        result = merge_chunks(parts, seed)
        run.results.append(result)
        run.series.extend(result.series)
        run.findings.append(to_finding(result, subject, realistic_budget=realistic_budget))
        run.queries += result.total_queries
    run.notes.append(
        f"{run.queries} queries sent in total by {len(tasks)} tasks on the "
        f"{executor.name} executor ({executor.workers} workers)"
    )
    return run
