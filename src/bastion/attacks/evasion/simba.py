"""SimBA (Guo et al. 2019): score-based, one orthonormal direction per step.

Each step tries +step then −step along the point's next basis direction and
keeps whichever lowers the margin loss. The basis is the pixels (any domain)
or, for images, the low frequencies of the 2-D DCT first, where a classifier's
decisions are most sensitive. At most two queries per point per step.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
from scipy.fft import idctn

from bastion.attacks.base import Norm
from bastion.attacks.evasion.book import Book, margin
from bastion.attacks.evasion.engine import EvasionAttack
from bastion.attacks.evasion.square import _grid
from bastion.attacks.oracle import Access
from bastion.attacks.space import Domain

__all__ = ["SimBADCT", "SimBAPixel"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class _SimBA(EvasionAttack):
    access = Access.SCORES
    norm = Norm.L2

    def __init__(
        self, *, step: float = 0.2, eps: float | None = None, stop_on_success: bool = True
    ) -> None:
        super().__init__(eps=eps, step=step)
        self.step = step
        self.stop_on_success = stop_on_success

    def _order(self, book: Book, rng: np.random.Generator) -> IntArray:
        """(n, k) basis indices per point, in the order they are tried."""
        raise NotImplementedError

    def _directions(self, book: Book, idx: IntArray) -> FloatArray:
        raise NotImplementedError

    def _attack(self, book: Book, rng: np.random.Generator) -> None:
        space = book.space
        order = self._order(book, rng)
        rows = np.arange(book.n)
        x = book.x0.copy()
        s = book.scores0 if book.scores0 is not None else book.scores(rows, x)[0]
        loss = margin(s, book.y0, book.targets)
        tgt = book.targets
        width = order.shape[1]
        if width == 0:
            return  # every feature is immutable: nothing to try
        spent_at_wrap = -1
        # On a plateau (trees, rounded scores) no single step changes the answer: a point
        # that went a whole pass of directions without a gain doubles its step size.
        directions = np.unique(order[0]).size
        scale = np.ones(book.n)
        stale = np.zeros(book.n, dtype=np.int64)
        for k in itertools.count():
            if k % width == 0:  # the order is cycled while budget remains and steps cost
                spent = int(book.queries.sum())
                if spent == spent_at_wrap:
                    return  # a whole cycle cost nothing: no step can move any point
                spent_at_wrap = spent
            active = book.remaining() >= 2
            if self.stop_on_success:
                active &= loss >= 0
            idx = np.flatnonzero(active)
            if idx.size == 0:
                return
            q = self._directions(book, order[idx, k % width]) * (self.step * scale[idx, None])
            pending = np.ones(idx.size, dtype=bool)
            for sign in (1.0, -1.0):
                j = np.flatnonzero(pending)
                if j.size == 0:
                    break
                r = idx[j]
                cand = space.project(x[r] + sign * q[j], book.x0[r])
                moved = np.any(cand != x[r], axis=1)  # a step the bounds undo costs nothing
                j, r, cand = j[moved], r[moved], cand[moved]
                if r.size == 0:
                    continue
                s, _ = book.scores(r, cand)
                new = margin(s, book.y0[r], None if tgt is None else tgt[r])
                better = new < loss[r]
                x[r[better]] = cand[better]
                loss[r[better]] = new[better]
                pending[j[better]] = False
            stale[idx] = np.where(pending, stale[idx] + 1, 0)
            flat = idx[stale[idx] >= directions]
            scale[flat] *= 2.0
            stale[flat] = 0


class SimBAPixel(_SimBA):
    name = "simba-pixel"

    def _order(self, book: Book, rng: np.random.Generator) -> IntArray:
        free = np.flatnonzero(book.space.free)
        passes = max(1, -(-book.budget // max(free.size, 1)))
        keys = rng.random((passes, book.n, free.size))
        order = free[np.argsort(keys, axis=2)]  # a fresh permutation per pass
        return np.asarray(np.concatenate(list(order), axis=1), dtype=np.int64)

    def _directions(self, book: Book, idx: IntArray) -> FloatArray:
        out = np.zeros((idx.size, book.space.dim))
        out[np.arange(idx.size), idx] = 1.0
        return out


class SimBADCT(_SimBA):
    name = "simba-dct"
    domains = frozenset({Domain.IMAGE})

    def _order(self, book: Book, rng: np.random.Generator) -> IntArray:
        h, w, c = _grid(book.space.shape)
        # low frequencies first: rank by the larger of the two frequency indices,
        # randomly within a rank
        u, v, _ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
        level = np.maximum(u, v).reshape(-1).astype(np.float64)
        passes = max(1, -(-book.budget // level.size))
        keys = level[None, None, :] + rng.random((passes, book.n, level.size))
        order = np.argsort(keys, axis=2)  # low frequencies first, again on every pass
        return np.asarray(np.concatenate(list(order), axis=1), dtype=np.int64)

    def _directions(self, book: Book, idx: IntArray) -> FloatArray:
        h, w, c = _grid(book.space.shape)
        coef = np.zeros((idx.size, h * w * c))
        coef[np.arange(idx.size), idx] = 1.0
        img = idctn(coef.reshape(idx.size, h, w, c), axes=(1, 2), norm="ortho")
        return np.asarray(img.reshape(idx.size, -1) * book.space.free)
