"""`bastion detect eval`: every detector configuration against benign users and real attacks.

For each task and configuration, one fresh guard (the arena) sees, in this
order, the benign streams (false positives), each non-adaptive attack run as
its own principal (detection rate, queries to first detection, success with
the detector's actions on), the adaptive attacker, and extraction runs; a
second guard without detectors gives the attacks' success with no defence.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bastion.detect.arena import Arena, Tally, replay
from bastion.detect.campaigns import (
    ART_ATTACKS,
    BASTION_ATTACKS,
    adaptive_run,
    art_run,
    bastion_run,
    extraction_run,
    victims,
)
from bastion.detect.configurations import CONFIGURATIONS, DOMAIN_CONFIGURATION, detectors
from bastion.detect.profile import fit_profile
from bastion.detect.streams import benign_streams, load_task

__all__ = ["CONFIGURATIONS", "DOMAIN_CONFIGURATION", "EvalPlan", "EvalResult", "evaluate"]


@dataclass
class EvalPlan:
    tasks: tuple[str, ...] = ("digits32", "cancer")
    configurations: tuple[str, ...] = ("similarity+extraction", "fingerprint")
    attacks: tuple[str, ...] = BASTION_ATTACKS
    art: bool = True
    runs: int = 5
    budget: int = 1000
    benign: int = 200
    adaptive_runs: int = 5
    adaptive_budget: int = 10_000
    adaptive_accounts: int = 10
    extraction: tuple[str, ...] = ("natural", "random", "synthetic")
    extraction_budget: int = 1000
    # benign users who come after the attacks, when the global history holds the attackers'
    # suspect queries near items benign users also send (0: skip)
    benign_after: int = 0
    seed: int = 0


@dataclass
class EvalResult:
    task: str
    configuration: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per attack / stream kind
    benign_principals: int = 0
    benign_flagged: int = 0
    benign_queries: int = 0
    cost_ms: float = 0.0  # detectors' own time per benign query (all detectors together)
    memory_bytes_per_principal: int = 0  # at most (a full history)
    memory_bytes_held: int = 0  # the mean held per benign principal, after the benign streams
    extraction: list[dict[str, Any]] = field(default_factory=list)
    benign_after_principals: int = 0  # other benign users, after all the attacks
    benign_after_flagged: int = 0
    # per configured action, the benign principals that reached its level (a user degraded to
    # labels only pays more than one flagged for a look)
    benign_levels: dict[str, int] = field(default_factory=dict)
    benign_after_levels: dict[str, int] = field(default_factory=dict)

    @property
    def fpr(self) -> float:
        return self.benign_flagged / max(self.benign_principals, 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fpr"] = self.fpr
        return d


def _row(name: str, source: str, tallies: list[Tally], baseline: list[Tally]) -> dict[str, Any]:
    det = [t.detected_at for t in tallies if t.detected_at is not None]
    return {
        "attack": name,
        "source": source,
        "runs": len(tallies),
        "detected": len(det),
        "detection_rate": len(det) / max(len(tallies), 1),
        "queries_to_detection_median": float(np.median(det)) if det else None,
        "queries_to_detection_p90": float(np.percentile(det, 90)) if det else None,
        "queries_to_detection": det,
        "success_with_detector": float(np.mean([t.success for t in tallies])) if tallies else 0.0,
        "success_without_detector": (
            float(np.mean([t.success for t in baseline])) if baseline else None
        ),
        "queries_answered_median": float(np.median([t.answered for t in tallies]))
        if tallies
        else 0,
    }


def _benign(arena: Arena, res: EvalResult, n: int, seed: int) -> None:
    s0, r0 = arena.detection_cost()
    flagged, queries, levels = _send_benign(arena, n, seed + 1, "user")
    s1, r1 = arena.detection_cost()
    res.benign_principals, res.benign_flagged, res.benign_queries = n, flagged, queries
    res.benign_levels = levels
    res.cost_ms = 1000.0 * (s1 - s0) / max(r1 - r0, 1)


def _send_benign(arena: Arena, n: int, seed: int, prefix: str) -> tuple[int, int, dict[str, int]]:
    """(principals flagged, queries sent, principals per action level reached) for `n` benign
    users drawn with `seed`."""
    streams = list(benign_streams(arena.task, n, seed=seed))
    flagged, queries = replay(arena, streams, prefix)
    names = [s.principal.replace("user", prefix, 1) for s in streams]
    return len(flagged), queries, arena.reached(names)


def _run_attacks(
    arena: Arena, plan: EvalPlan, points: list[int], tag: str
) -> dict[tuple[str, str], list[Tally]]:
    out: dict[tuple[str, str], list[Tally]] = {}
    for attack in plan.attacks:
        out[(attack, "bastion")] = [bastion_run(arena, attack, i, plan.budget, tag) for i in points]
    if plan.art:
        for attack in ART_ATTACKS:
            runs = [art_run(arena, attack, i, plan.budget, tag) for i in points]
            if not any(t.extra.get("skipped") for t in runs):
                out[(attack, "ART")] = runs
    return out


def evaluate(plan: EvalPlan, progress: Any = None) -> list[EvalResult]:
    """Run the plan; `progress(message)` is called between stages (for a CLI spinner)."""
    say = progress or (lambda _m: None)
    results: list[EvalResult] = []
    with tempfile.TemporaryDirectory(prefix="bastion-detect-") as tmp:
        for task_name in plan.tasks:
            say(f"{task_name}: loading task and fitting the benign profile")
            task = load_task(task_name, seed=plan.seed)
            profile = fit_profile(task.x_fit, shape=task.shape, seed=plan.seed)
            ppath = Path(tmp) / f"{task_name}.profile.json"
            profile.save(ppath)
            points = victims(Arena(task, []), plan.runs + plan.adaptive_runs)
            base = Arena(task, [])
            say(f"{task_name}: attacks without detection (baseline)")
            baseline = _run_attacks(base, plan, points[: plan.runs], "base-")
            base_adaptive = [
                adaptive_run(base, i, plan.adaptive_budget, 1, "base-") for i in points[plan.runs :]
            ]
            for conf in plan.configurations:
                if (conf == "fingerprint" and task.domain != "image") or (
                    conf.startswith("rows") and task.domain == "image"
                ):
                    continue
                entries = detectors(conf, ppath)
                arena = Arena(task, entries)
                res = EvalResult(task_name, conf)
                say(f"{task_name}/{conf}: benign streams")
                _benign(arena, res, plan.benign, plan.seed)
                res.memory_bytes_held = _held(arena)
                say(f"{task_name}/{conf}: attacks")
                runs = _run_attacks(arena, plan, points[: plan.runs], "")
                for (attack, source), tallies in runs.items():
                    res.rows.append(_row(attack, source, tallies, baseline[(attack, source)]))
                if plan.adaptive_runs:
                    say(f"{task_name}/{conf}: adaptive attacker")
                    adaptive = [
                        adaptive_run(arena, i, plan.adaptive_budget, plan.adaptive_accounts)
                        for i in points[plan.runs :]
                    ]
                    row = _row("adaptive-square", "bastion/adaptive", adaptive, base_adaptive)
                    row["accounts_used_median"] = float(
                        np.median([t.extra["accounts"] for t in adaptive])
                    )
                    res.rows.append(row)
                if plan.extraction and any(e["kind"] == "extraction" for e in entries):
                    say(f"{task_name}/{conf}: extraction")
                    for k, strategy in enumerate(plan.extraction):
                        t = extraction_run(arena, strategy, plan.extraction_budget, plan.seed + k)
                        res.extraction.append(
                            {
                                "strategy": strategy,
                                "detected_at": t.detected_at,
                                "fidelity_at_detection": t.extra["fidelity_at_detection"],
                                "queries_to_fidelity_0.8": t.extra["queries_to_fidelity_0.8"],
                                "copied_before_detection": t.success,
                                "curve": t.extra["curve"],
                            }
                        )
                if plan.benign_after:
                    say(f"{task_name}/{conf}: benign users after the attacks")
                    res.benign_after_principals = plan.benign_after
                    after = _send_benign(arena, plan.benign_after, plan.seed + 2, "later")
                    res.benign_after_flagged, _, res.benign_after_levels = after
                res.memory_bytes_per_principal = _memory(arena)
                results.append(res)
                arena.close()
            base.close()
    return results


def _detectors(arena: Arena) -> list[Any]:
    """The arena's detectors themselves (unwrapped from the harness's timers)."""
    return [
        getattr(det, "det", det)
        for policy in arena.guard.policies
        for det in getattr(policy, "detectors", [])
    ]


def _memory(arena: Arena) -> int:
    return sum(int(det.memory_bytes()) for det in _detectors(arena) if hasattr(det, "memory_bytes"))


def _held(arena: Arena) -> int:
    """Mean bytes the detectors hold now per principal they track (histories grow with use)."""
    total = 0
    for det in _detectors(arena):
        if hasattr(det, "memory_held"):
            n, held = det.memory_held()
            total += held // max(n, 1)
    return total
