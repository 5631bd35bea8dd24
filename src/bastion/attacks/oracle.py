"""The attacker's view of a target: exactly the access the deployed system gives.

Every attack talks to the model only through an `Oracle`, which sends through
the shared query `Ledger` (so the counts are the ones probes and reports use).
On top of the ledger it keeps the attack's own count and budget (the query that
would exceed it is never sent), refuses to read scores when the access is
label-only, and refuses to send an input that breaks the input space's
constraints. Attacks therefore cannot overstate what an attacker can do.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.attacks.space import InputSpace
from bastion.errors import AccessDenied, BudgetExhausted, EndpointError, TargetError
from bastion.target.base import OutputKind, QueryResult, Target
from bastion.target.ledger import Ledger

__all__ = ["HELD", "Access", "ConstraintViolation", "Oracle"]

HELD = -1  # the label of a row the endpoint accepted but did not answer (HTTP 202)


class Access(StrEnum):
    """What an attack reads from each answer; ordered like `OutputKind`."""

    LABEL = "label"
    SCORES = "scores"

    @classmethod
    def of(cls, output: OutputKind) -> Access:
        # top-k answers are scores with holes (NaN); attacks that need scores cope
        return cls.LABEL if output is OutputKind.LABEL else cls.SCORES

    def allows(self, needed: Access) -> bool:
        return self is Access.SCORES or needed is Access.LABEL


class ConstraintViolation(AssertionError):
    """An attack tried to send an infeasible input: a bug in the attack, never user error."""


class Oracle:
    """Counted, budgeted, access-limited queries against one target.

    `target` may already be a `Ledger` (shared with probes, with its own budget
    and pacing); any other target is wrapped in a fresh one.
    """

    def __init__(
        self,
        target: Target,
        *,
        budget: int | None = None,
        access: Access | None = None,
        space: InputSpace | None = None,
        batch_size: int = 4096,
    ) -> None:
        info = target.info()
        observed = Access.of(info.output)
        if access is not None and not observed.allows(access):
            raise AccessDenied(
                f"target {info.name!r} returns {info.output.value} only; "
                f"{access.value} access is not available",
                hint="choose a label-only attack",
            )
        self.ledger = target if isinstance(target, Ledger) else Ledger(target)
        self.info = info
        self.access = access or observed
        self.budget = budget
        self.space = space
        self.batch_size = batch_size
        self.queries = 0
        self.calls = 0
        self.held = 0  # rows answered with 202 and no prediction, when the caller allowed it

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries

    def labels(
        self,
        x: npt.NDArray[Any],
        origin: npt.NDArray[np.float64] | None = None,
        *,
        unanswered: bool = False,
    ) -> npt.NDArray[np.int64]:
        """Predicted class per row; never touches the answer's scores.

        With `unanswered`, a row the endpoint holds without an answer (HTTP 202,
        e.g. a guard's review queue) comes back as HELD instead of stopping the
        call, as an attacker who simply drops those rows would carry on.
        """
        parts = [np.asarray(r.labels, dtype=np.int64) for r in self._send(x, origin, unanswered)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def scores(
        self,
        x: npt.NDArray[Any],
        origin: npt.NDArray[np.float64] | None = None,
        *,
        unanswered: bool = False,
    ) -> npt.NDArray[np.float64]:
        """Scores per row and class (NaN where a top-k answer omits a class)."""
        return self.answers(x, origin, unanswered=unanswered)[1]

    def answers(
        self,
        x: npt.NDArray[Any],
        origin: npt.NDArray[np.float64] | None = None,
        *,
        unanswered: bool = False,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The target's labels and its scores from the same answers (one query per row).

        Held rows (see `labels`) have label HELD and NaN scores.
        """
        if self.access is not Access.SCORES:
            raise AccessDenied(
                f"scores requested from {self.info.name!r} with label-only access",
                hint="this attack needs scores; run a decision-based attack instead",
            )
        labels, out = [], []
        k = self.info.n_classes or 0
        for r in self._send(x, origin, unanswered):
            if r.status == 202 and r.scores is None:
                r = QueryResult(r.labels, np.full((len(r), k), np.nan), r.latency_s, 202)
            if r.scores is None:
                raise TargetError(f"target {self.info.name!r} returned no scores")
            labels.append(np.asarray(r.labels, dtype=np.int64))
            out.append(np.asarray(r.scores, dtype=np.float64))
        if not out:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.info.n_classes or 0))
        return np.concatenate(labels), np.concatenate(out)

    def _send(
        self,
        x: npt.NDArray[Any],
        origin: npt.NDArray[np.float64] | None,
        unanswered: bool = False,
    ) -> list[QueryResult]:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        n = int(x.shape[0])
        if self.budget is not None and self.queries + n > self.budget:
            raise BudgetExhausted(
                f"{n} more queries would exceed the budget of {self.budget} ({self.queries} spent)",
                spent=self.queries,
                budget=self.budget,
            )
        if self.space is not None and n:
            bad = self.space.violations(x, origin)
            if bad.any():
                raise ConstraintViolation(
                    f"{int(bad.sum())} of {n} inputs break the input-space constraints"
                )
        shape = self.info.input_shape
        answers = []
        start = 0
        while start < n:
            chunk = x[start : start + self.batch_size]
            if shape is not None and tuple(shape) != (chunk.shape[1],):
                chunk = chunk.reshape((chunk.shape[0], *shape))
            try:
                answer = self.ledger.query(chunk.astype(self.info.dtype, copy=False))
            except EndpointError as exc:
                # "too large": any attacker's client sends smaller batches and carries on;
                # "held" (202): one held row holds the batch, so send smaller batches too
                # and, if the caller can do without them, drop the rows held on their own
                splittable = exc.status == 413 or (exc.status == 202 and unanswered)
                if not splittable:
                    raise
                if chunk.shape[0] <= 1:
                    if exc.status != 202:
                        raise
                    self.queries += 1
                    self.calls += 1
                    self.held += 1
                    start += 1
                    held = np.full(1, HELD, dtype=np.int64)
                    answers.append(QueryResult(held, None, 0.0, status=202))
                    continue
                self.queries += int(chunk.shape[0])  # sent and charged, like the ledger does
                self.calls += 1
                # a held batch says nothing of which row was held: go one row at a time
                self.batch_size = 1 if exc.status == 202 else max(1, int(chunk.shape[0]) // 2)
                if self.budget is not None and self.queries + (n - start) > self.budget:
                    raise BudgetExhausted(
                        f"refused batches used the budget of {self.budget} ({self.queries} spent)",
                        spent=self.queries,
                        budget=self.budget,
                    ) from None
                continue
            start += int(chunk.shape[0])
            if len(answer) != chunk.shape[0]:
                raise TargetError(
                    f"target {self.info.name!r} answered {len(answer)} rows "
                    f"for {chunk.shape[0]} inputs"
                )
            self.queries += int(chunk.shape[0])
            self.calls += 1
            answers.append(answer)
        return answers
