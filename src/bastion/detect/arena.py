"""The evaluation arena: a real guard (detection policy, actions, output minimisation) in
front of a real model, seen by each attacker or benign user as one principal.

Every query goes through `Guard.handle` exactly as in production, so the
detector runs through the guard's own hook, its evidence lands in the guard's
store and the actions (label-only answers, blocks) are applied by the guard's
policies. `PrincipalTarget` is the `Target` an attack sees: it records when the
principal was first detected and whether the attack reached an adversarial
answer that the guard actually returned before stopping it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.detect.streams import Task
from bastion.errors import TargetError
from bastion.guard.adapters.wrap import GuardDenied, GuardedModel, wrap
from bastion.guard.config import GuardConfig
from bastion.guard.core import Guard
from bastion.guard.policies.detection import GRADED_ACTIONS, Evidence, Observation
from bastion.guard.request import Principal
from bastion.guard.stores.base import Store
from bastion.guard.stores.memory import MemoryStore
from bastion.target.base import OutputKind, QueryResult, TargetInfo

__all__ = ["Arena", "PrincipalTarget", "Tally", "replay"]

# the actions guard plans write (the graded response), so the evaluation measures what users get
DEFAULT_ACTIONS: list[dict[str, Any]] = [dict(a) for a in GRADED_ACTIONS]


class Arena:
    """One guard around one task's model; `detectors` are guard.yaml detector entries."""

    def __init__(
        self,
        task: Task,
        detectors: list[dict[str, Any]],
        *,
        actions: list[dict[str, Any]] | None = None,
        audit_path: Path | None = None,
        seed: int = 0,
    ) -> None:
        self.task = task
        cfg = {
            "model": {"name": task.name, "inputs": [{"name": "x", "shape": [-1, *task.shape]}]},
            "store": {"kind": "memory"},
            "audit": {"enabled": audit_path is not None, "path": str(audit_path or "unused")},
            "metrics": False,
            "policies": [
                {
                    "kind": "detection",
                    "detectors": detectors,
                    "actions": actions if actions is not None else DEFAULT_ACTIONS,
                    "throttle": "1000/second",
                    # the `noise` action's draws: a run repeats exactly, as the attacks' do
                    "seed": seed,
                },
                {"kind": "output_minimisation", "default": {"mode": "scores", "decimals": 4}},
            ],
        }
        self.guard = Guard(GuardConfig.model_validate(cfg), store=MemoryStore())
        self.model: GuardedModel = wrap(self.guard, task.predict_proba)
        self.timers: list[_Timed] = []
        for policy in self.guard.policies:
            dets = getattr(policy, "detectors", None)
            if dets:
                self.timers.extend(_Timed(d) for d in dets)
                dets[:] = self.timers

    def detection_cost(self) -> tuple[float, int]:
        """Seconds spent inside the detectors, and rows they judged."""
        return sum(t.seconds for t in self.timers), max((t.rows for t in self.timers), default=0)

    @property
    def first_level(self) -> float:
        levels = [lv.at for p in self.guard.policies for lv in getattr(p, "levels", [])]
        return min(levels) if levels else float("inf")

    def evidence(self, principal: str) -> float:
        return self.guard.store.get_state(principal).total

    def reached(self, principals: Iterable[str]) -> dict[str, int]:
        """For each configured action, how many of `principals` ever reached its level: the
        benign cost of each step of the response, not only of the first (evidence only grows,
        so a principal's total now is the highest it had)."""
        totals = [self.evidence(p) for p in principals]
        levels = sorted(
            (lv for p in self.guard.policies for lv in getattr(p, "levels", [])),
            key=lambda lv: lv.at,
        )
        return {lv.action: sum(t >= lv.at for t in totals) for lv in levels}

    def close(self) -> None:
        self.guard.close()


class _Timed:
    """Measures a detector's own time per query (the guard's overhead is not the detector's)."""

    def __init__(self, det: Any) -> None:
        self.det = det
        self.name = det.name
        self.seconds = 0.0
        self.rows = 0

    def observe(self, obs: Observation, store: Store) -> Evidence | None:
        t0 = time.perf_counter()
        try:
            return self.det.observe(obs, store)  # type: ignore[no-any-return]
        finally:
            self.seconds += time.perf_counter() - t0
            self.rows += int(next(iter(obs.inputs.values())).shape[0])


@dataclass
class Tally:
    """What happened to one principal."""

    principal: str
    queries: int = 0
    answered: int = 0
    detected_at: int | None = None  # 1-based query index when evidence first reached `flag`
    stopped_at: int | None = None  # query index when the guard refused or removed scores
    success: bool = False
    cost_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class PrincipalTarget:
    """An attacker's view of the arena as one principal (a `Target`)."""

    def __init__(
        self,
        arena: Arena,
        principal: str,
        *,
        x0: npt.NDArray[np.float64] | None = None,
        y0: int | None = None,
        eps_l2: float = np.inf,
        output: OutputKind = OutputKind.SCORES,
    ) -> None:
        self.arena = arena
        self.tally = Tally(principal)
        self.principal = Principal(principal, frozenset({"predict"}))
        self.x0, self.y0, self.eps_l2 = x0, y0, eps_l2
        self._level = arena.first_level
        t = arena.task
        self._info = TargetInfo(
            name=f"{t.name}@guard",
            output=output,
            n_classes=t.n_classes,
            input_shape=(int(np.prod(t.shape)),),
            dtype="float64",
            bounds=(float(t.lower.min()), float(t.upper.max())),
        )

    def info(self) -> TargetInfo:
        return self._info

    def close(self) -> None:
        return None

    def query(self, inputs: npt.NDArray[Any]) -> QueryResult:
        rows = np.asarray(inputs, dtype=np.float64).reshape(-1, int(np.prod(self.arena.task.shape)))
        tally = self.tally
        if tally.stopped_at is not None:
            raise TargetError(f"{tally.principal} is blocked")
        t0 = time.perf_counter()
        try:
            pred = self.arena.model(
                rows.reshape(-1, *self.arena.task.shape), principal=self.principal
            )
        except GuardDenied as exc:
            tally.stopped_at = tally.queries + 1
            raise TargetError(f"guard refused {tally.principal}: {exc.deny.reason}") from None
        finally:
            tally.cost_s += time.perf_counter() - t0
        tally.queries += len(rows)
        tally.answered += len(rows)
        if tally.detected_at is None and self.arena.evidence(tally.principal) >= self._level:
            tally.detected_at = tally.queries
        if self.x0 is not None and self.y0 is not None and not tally.success:
            dist = np.sqrt(((rows - self.x0) ** 2).sum(1))
            tally.success = bool(np.any((pred.labels != self.y0) & (dist <= self.eps_l2)))
        if pred.scores is None and self._info.output is not OutputKind.LABEL:
            tally.stopped_at = tally.stopped_at or tally.queries
        return QueryResult(
            labels=np.asarray(pred.labels, dtype=np.int64),
            scores=None if pred.scores is None else np.asarray(pred.scores, dtype=np.float64),
            latency_s=time.perf_counter() - t0,
        )


def replay(
    arena: Arena, streams: Iterable[Any], prefix: str | None = None
) -> tuple[list[str], int]:
    """Send benign streams (`streams.BenignStream`) through the arena, each as its own
    principal (renamed `prefix-NNNNN` when given), until one is refused: the principals the
    guard brought to its first action level, and the queries sent. A user degraded to labels
    only goes on sending (it reads labels), so its evidence may still reach a block."""
    flagged, queries = [], 0
    for s in streams:
        name = s.principal if prefix is None else s.principal.replace("user", prefix, 1)
        pt = PrincipalTarget(arena, name, output=OutputKind.LABEL)
        for q in s.queries:
            try:
                pt.query(q[None])
            except TargetError:
                break
        if pt.tally.detected_at is not None:
            flagged.append(name)
        queries += pt.tally.queries
    return flagged, queries
