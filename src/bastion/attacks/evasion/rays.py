"""RayS (Chen & Gu 2020): label-only L∞ attack by searching over ray directions.

The adversarial is sought along rays x0 + r·d with d a sign vector. Flipping
ever finer blocks of d, a flip is kept when the target is already fooled at
the best radius so far, followed by a binary search for the new, shorter
radius. One query per point per flip, all points in one batch.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bastion.attacks.base import Norm
from bastion.attacks.evasion.book import Book
from bastion.attacks.evasion.engine import EvasionAttack
from bastion.attacks.oracle import Access

__all__ = ["RayS"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class RayS(EvasionAttack):
    name = "rays"
    norm = Norm.LINF
    access = Access.LABEL

    def __init__(
        self, *, eps: float | None = 0.15, tol: float = 1e-3, stop_on_success: bool = True
    ) -> None:
        super().__init__(eps=eps, tol=tol)
        self.tol = tol
        self.stop_on_success = stop_on_success

    def _ray(self, book: Book, rows: IntArray, d: FloatArray, r: FloatArray) -> FloatArray:
        x0 = book.x0[rows]
        return book.space.project(x0 + r[:, None] * d, x0)

    def _search(
        self, book: Book, rows: IntArray, d: FloatArray, hi: FloatArray, tol: float
    ) -> FloatArray:
        """Smallest radius (to `tol`) at which each ray is still adversarial."""
        lo = np.zeros_like(hi)
        for _ in range(40):
            todo = np.flatnonzero((hi - lo > tol) & (book.remaining(rows) > 0))
            if todo.size == 0:
                break
            mid = (hi[todo] + lo[todo]) / 2.0
            adv = book.labels(rows[todo], self._ray(book, rows[todo], d[todo], mid))
            hi[todo] = np.where(adv, mid, hi[todo])
            lo[todo] = np.where(adv, lo[todo], mid)
        return hi

    def _attack(self, book: Book, rng: np.random.Generator) -> None:
        space = book.space
        free = np.flatnonzero(space.free)
        span = float(np.max(space.span))
        tol = self.tol * span
        n = book.n
        d = np.zeros((n, space.dim))
        d[:, free] = 1.0
        radius = np.full(n, np.inf)
        rows = np.arange(n)
        perm = free[rng.permutation(free.size)]
        stage, block = 0, 0
        while True:
            live = book.remaining() > 0
            if self.stop_on_success:
                live &= ~book.done()
            idx = np.flatnonzero(live)
            if idx.size == 0:
                return
            blocks = np.array_split(perm, 2**stage)
            flip = blocks[block]
            cand = d[idx].copy()
            cand[:, flip] *= -1.0
            probe_r = np.where(np.isfinite(radius[idx]), radius[idx], span)
            adv = book.labels(rows[idx], self._ray(book, idx, cand, probe_r))
            hit = idx[adv]
            if hit.size:
                d[hit] = cand[adv]
                radius[hit] = self._search(book, hit, d[hit], probe_r[adv], tol)
            block += 1
            if block >= len(blocks):
                block = 0
                stage = stage + 1 if 2 ** (stage + 1) <= free.size else stage
