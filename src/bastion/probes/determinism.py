"""Same question, same answer? Whether a randomised-response defence is in place.

Deterministic answers let an attacker take exact finite differences on scores
and walk a decision boundary to any precision. With scores exposed we repeat
one input; with labels only we first bisect to a point on the decision
boundary (where a randomised defence must show itself) and repeat that.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.findings import Confidence, Finding, Severity
from bastion.probes.base import ProbeSession

__all__ = ["DeterminismProbe"]

_BISECTION_STEPS = 12
_CANDIDATES = 16


class DeterminismProbe:
    name = "determinism"
    max_requests = 1 + 1 + _BISECTION_STEPS + 16
    order = 60

    def _answer(
        self, session: ProbeSession, x: npt.NDArray[Any]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64] | None] | None:
        exchange = session.infer(x)
        if exchange.status != 200:
            return None
        return session.dialect.decode(exchange.json(), int(x.shape[0]))

    def _boundary_point(self, session: ProbeSession) -> npt.NDArray[Any] | None:
        candidates = session.valid_inputs(_CANDIDATES)
        answer = self._answer(session, candidates)
        if answer is None:
            return None
        labels = answer[0]
        others = np.flatnonzero(labels != labels[0])
        if others.size == 0:
            return None
        a, b = candidates[0], candidates[int(others[0])]
        label_a = labels[0]
        for _ in range(_BISECTION_STEPS):
            mid = (a + b) / 2
            got = self._answer(session, mid[None])
            if got is None:
                return None
            if got[0][0] == label_a:
                a = mid
            else:
                b = mid
        boundary: npt.NDArray[Any] = (a + b) / 2
        return boundary

    def run(self, session: ProbeSession) -> Iterator[Finding]:
        session.prepare()
        repeats = min(session.settings.repeats, 16)
        probe_x = session.valid_inputs(1)
        first = self._answer(session, probe_x)
        if first is None:
            session.observe(self.name, conclusive=False)
            return
        mode = "scores"
        if first[1] is None:
            mode = "labels_at_boundary"
            point = self._boundary_point(session)
            if point is None:
                session.observe(self.name, conclusive=False, reason="no decision boundary found")
                return
            probe_x = point[None]
        labels: list[int] = []
        rows: list[npt.NDArray[np.float64]] = []
        for _ in range(repeats):
            got = self._answer(session, probe_x)
            if got is None:
                break
            labels.append(int(got[0][0]))
            if got[1] is not None:
                rows.append(got[1][0])
        if len(labels) < 2:
            session.observe(self.name, conclusive=False)
            return
        distinct_labels = len(set(labels))
        spread = 0.0
        if rows:
            stack = np.vstack(rows)
            spread = float(np.nanmax(np.abs(stack - stack[0]))) if stack.size else 0.0
        deterministic = distinct_labels == 1 and spread == 0.0
        evidence = {
            "mode": mode,
            "repeats": len(labels),
            "distinct_labels": distinct_labels,
            "max_score_difference": spread,
            "label_flip_rate": round(1 - max(map(labels.count, set(labels))) / len(labels), 3),
        }
        session.observe(self.name, conclusive=True, deterministic=deterministic, **evidence)
        if deterministic:
            where = "on the decision boundary" if mode != "scores" else "for the same input"
            yield session.finding(
                "P111",
                "Answers are deterministic",
                f"{len(labels)} repeats of one query {where} returned identical answers: no "
                "randomised-response defence, so boundary and finite-difference attacks get "
                "exact answers.",
                Severity.LOW,
                evidence,
                atlas=("AML.T0043.001",),
                owasp=("ML01",),
                mitigations=("randomised-response",),
                confidence=Confidence.HIGH if mode == "scores" else Confidence.MEDIUM,
            )
