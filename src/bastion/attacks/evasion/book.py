"""Per-point bookkeeping shared by all evasion attacks.

Evasion attacks work on a whole batch of points at once. The book routes every
query through the oracle, charges it to the point it belongs to, enforces the
per-point budget, and keeps each point's best adversarial so far. A point
counts as a success from the first query that found an adversarial within
`eps` (any adversarial when `eps` is None), which is what the success-vs-budget
curve plots.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bastion.attacks.base import Norm
from bastion.attacks.oracle import Oracle
from bastion.attacks.space import InputSpace
from bastion.errors import BudgetExhausted

__all__ = ["Book", "margin"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Book:
    def __init__(
        self,
        oracle: Oracle,
        space: InputSpace,
        x0: FloatArray,
        y0: IntArray,
        *,
        budget: int,
        norm: Norm,
        eps: float | None,
        targets: IntArray | None = None,
        pool: FloatArray | None = None,
    ) -> None:
        self.oracle = oracle
        self.space = space
        self.x0 = np.asarray(x0, dtype=np.float64)
        self.y0 = np.asarray(y0, dtype=np.int64)
        self.targets = None if targets is None else np.asarray(targets, dtype=np.int64)
        self.budget = budget
        self.pool = pool
        self.norm = norm
        self.eps = eps
        n = self.x0.shape[0]
        self.best = self.x0.copy()
        self.dist = np.full(n, np.inf)
        self.queries = np.zeros(n, dtype=np.int64)
        self.hit_at = np.full(n, -1, dtype=np.int64)
        # the clean points' scores, from the query that labelled them (score attacks)
        self.scores0: FloatArray | None = None

    @property
    def n(self) -> int:
        return int(self.x0.shape[0])

    @property
    def targeted(self) -> bool:
        return self.targets is not None

    def remaining(self, rows: IntArray | None = None) -> IntArray:
        q = self.queries if rows is None else self.queries[rows]
        return np.asarray(self.budget - q, dtype=np.int64)

    def done(self) -> BoolArray:
        return np.asarray(self.hit_at >= 0)

    def adversarial(self, labels: IntArray, rows: IntArray) -> BoolArray:
        if self.targets is not None:
            return np.asarray(labels == self.targets[rows])
        return np.asarray(labels != self.y0[rows])

    def _charge(self, rows: IntArray) -> None:
        spend = np.bincount(rows, minlength=self.n)
        if np.any(self.queries + spend > self.budget):
            raise BudgetExhausted(
                "an evasion attack tried to exceed its per-point budget",
                spent=int(self.queries.max()),
                budget=self.budget,
            )
        self.queries += spend

    def labels(self, rows: IntArray, x: FloatArray) -> BoolArray:
        """Is each candidate adversarial? Charges one query per row of `x`."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.zeros(0, dtype=bool)
        self._charge(rows)
        labels = self.oracle.labels(x, origin=self.x0[rows])
        adv = self.adversarial(labels, rows)
        self._keep(rows, x, adv)
        return adv

    def scores(self, rows: IntArray, x: FloatArray) -> tuple[FloatArray, BoolArray]:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.zeros((0, 0)), np.zeros(0, dtype=bool)
        self._charge(rows)
        s = self.oracle.scores(x, origin=self.x0[rows])
        labels = np.nanargmax(np.nan_to_num(s, nan=-np.inf), axis=1).astype(np.int64)
        adv = self.adversarial(labels, rows)
        self._keep(rows, x, adv)
        return s, adv

    def _keep(self, rows: IntArray, x: FloatArray, adv: BoolArray) -> None:
        if not adv.any():
            return
        r, cand = rows[adv], x[adv]
        d = self.norm.of(cand - self.x0[r])
        order = np.lexsort((d, r))  # by row, then distance: first per row is the closest
        r, d, cand = r[order], d[order], cand[order]
        first = np.concatenate(([True], r[1:] != r[:-1]))
        r, d, cand = r[first], d[first], cand[first]
        better = d < self.dist[r]
        r, d, cand = r[better], d[better], cand[better]
        self.best[r] = cand
        self.dist[r] = d
        within = d <= self.eps * (1 + 1e-9) + 1e-12 if self.eps is not None else d >= 0
        newly = within & (self.hit_at[r] < 0)
        self.hit_at[r[newly]] = self.queries[r[newly]]

    def is_adversarial(self) -> BoolArray:
        return np.asarray(np.isfinite(self.dist))


def margin(scores: FloatArray, y: IntArray, targets: IntArray | None) -> FloatArray:
    """Loss to minimise: below zero means adversarial.

    Probabilities are compared in log space, where a saturated softmax still
    gives a signal; logits are used as they are. Classes a top-k answer omits
    count as the lowest score.
    """
    s = np.asarray(scores, dtype=np.float64)
    finite = s[np.isfinite(s)]
    if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
        s = np.log(np.clip(s, 1e-12, None))
    s = np.nan_to_num(s, nan=-1e12)
    idx = np.arange(s.shape[0])
    cls = y if targets is None else targets
    own = s[idx, cls]
    other = s.copy()
    other[idx, cls] = -np.inf
    best_other = other.max(axis=1)
    return np.asarray(own - best_other if targets is None else best_other - own)
