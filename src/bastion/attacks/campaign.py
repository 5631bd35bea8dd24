"""Run several attacks against one target and turn what they measured into a Report.

The campaign keeps only the attacks the observed access and the data allow
(a score-based attack against a label-only endpoint is skipped with a note,
not run blind), shares one ledger so the total cost is visible, and reads
severity at the budget a day of the observed rate limit allows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bastion.attacks.base import AttackData, AttackKind, AttackResult
from bastion.attacks.oracle import Access, Oracle
from bastion.attacks.radius import Radius, radius_for
from bastion.attacks.verdict import to_finding
from bastion.errors import BudgetExhausted, UsageError
from bastion.findings import Finding, Series, Subject
from bastion.registry import registry
from bastion.target.base import Target
from bastion.target.ledger import Ledger

__all__ = ["CampaignRun", "plan", "run_campaign"]

Progress = Callable[[str, int, int], None]


@dataclass
class CampaignRun:
    results: list[AttackResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    queries: int = 0


def _needs(kind: AttackKind, data: AttackData) -> str | None:
    if kind is AttackKind.EXTRACTION and data.x_eval is None:
        return "no held-out inputs to measure fidelity on"
    if kind is AttackKind.MEMBERSHIP and (data.members is None or data.nonmembers is None):
        return "no member/non-member records in the data"
    return None


def plan(
    names: Sequence[str], access: Access, data: AttackData
) -> tuple[list[tuple[str, Any]], list[str]]:
    """(name, attack class) to run, and a note for each attack skipped and why."""
    reg = registry("attacks")
    chosen, notes = [], []
    for name in names:
        cls = reg.get(name)  # unknown names fail here, before any query
        if not access.allows(cls.access):
            notes.append(f"{name} skipped: needs {cls.access.value}, target gives {access.value}")
            continue
        if data.space.domain not in cls.domains:
            notes.append(f"{name} skipped: does not handle {data.space.domain.value} data")
            continue
        missing = _needs(cls.kind, data)
        if missing:
            notes.append(f"{name} skipped: {missing}")
            continue
        chosen.append((name, cls))
    return chosen, notes


def run_campaign(
    target: Target,
    data: AttackData,
    names: Sequence[str],
    *,
    budget: int,
    seed: int = 0,
    eps: Radius = None,
    realistic_budget: int | None = None,
    subject: Subject | None = None,
    progress: Progress | None = None,
    batch_size: int = 4096,
) -> CampaignRun:
    """`budget` is per attacked point for evasion and per attack otherwise; `eps` is the
    success radius of evasion attacks (one value, or one per norm)."""
    if budget < 1:
        raise UsageError(f"--budget must be at least 1, got {budget}")
    ledger = target if isinstance(target, Ledger) else Ledger(target)
    probe = Oracle(ledger)
    chosen, notes = plan(names, probe.access, data)
    run = CampaignRun(notes=notes)
    if not chosen:
        raise UsageError(
            "none of the requested attacks can run against this target with this data",
            hint="; ".join(notes) or "name at least one attack",
        )
    for index, (name, cls) in enumerate(chosen):
        if progress is not None:
            progress(name, index, len(chosen))
        radius = radius_for(eps, cls)
        attack = cls(eps=radius) if radius is not None else cls()
        oracle = Oracle(ledger, access=cls.access, space=data.space, batch_size=batch_size)
        try:
            result = attack.run(oracle, data, budget=budget, seed=seed)
        except BudgetExhausted as exc:
            run.notes.append(f"{name} stopped: {exc}")
            continue
        run.results.append(result)
        run.series.extend(result.series)
        run.findings.append(to_finding(result, subject, realistic_budget=realistic_budget))
    if progress is not None:
        progress("done", len(chosen), len(chosen))
    run.queries = ledger.queries
    run.notes.append(f"{ledger.queries} queries sent in total")
    return run
