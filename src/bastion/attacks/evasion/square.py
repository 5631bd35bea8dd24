"""Square Attack (Andriushchenko et al. 2020): score-based random search, L∞ or L2.

Each step changes the perturbation inside one random square window (a random
feature subset for tabular rows) and keeps the change only if the margin loss
drops. The window shrinks on a fixed schedule. Every point makes one query per
step, all points in one batch.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bastion.attacks.base import Norm
from bastion.attacks.evasion.book import Book, margin
from bastion.attacks.evasion.engine import EvasionAttack
from bastion.attacks.oracle import Access

__all__ = ["SquareL2", "SquareLinf"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _grid(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(height, width, channels) of an input; tabular rows are one line of features."""
    if len(shape) == 3:
        return shape[0], shape[1], shape[2]
    if len(shape) == 2:
        return shape[0], shape[1], 1
    return 1, int(np.prod(shape)), 1


def _fraction(step: int, p_init: float) -> float:
    """Share of the input changed per step, halved at fixed milestones (as in the paper)."""
    halvings = sum(step > m for m in (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000))
    return float(p_init / (2**halvings))


def _windows(rng: np.random.Generator, m: int, hwc: tuple[int, int, int], p: float) -> BoolArray:
    """One random window per row, as a (m, dim) mask."""
    h, w, c = hwc
    if h == 1:  # tabular: a random subset of features, no spatial structure
        k = max(1, round(p * w))
        keys = rng.random((m, w))
        kth = np.partition(keys, k - 1, axis=1)[:, k - 1 : k]
        mask2 = keys <= kth
        return np.asarray(np.repeat(mask2[:, :, None], c, axis=2).reshape(m, -1))
    s = int(np.clip(round(np.sqrt(p * h * w)), 1, min(h, w)))
    r0 = rng.integers(0, h - s + 1, m)[:, None, None]
    c0 = rng.integers(0, w - s + 1, m)[:, None, None]
    rr = np.arange(h)[None, :, None]
    cc = np.arange(w)[None, None, :]
    mask = (rr >= r0) & (rr < r0 + s) & (cc >= c0) & (cc < c0 + s)
    return np.asarray(np.repeat(mask[:, :, :, None], c, axis=3).reshape(m, -1))


class _Square(EvasionAttack):
    access = Access.SCORES
    default_radius = 0.3

    warmup = 50
    max_width = 8

    def __init__(
        self, *, eps: float | None = None, p_init: float = 0.3, stop_on_success: bool = True
    ) -> None:
        # the radius bounds the search; success means an adversarial within it
        radius = self.default_radius if eps is None else eps
        super().__init__(eps=radius, p_init=p_init)
        self.radius = radius
        self.p_init = p_init
        self.stop_on_success = stop_on_success

    def _init_delta(
        self, rng: np.random.Generator, m: int, hwc: tuple[int, int, int]
    ) -> FloatArray:
        h, w, c = hwc
        stripes = rng.choice([-1.0, 1.0], size=(m, 1, w, c))
        return np.asarray(np.broadcast_to(stripes, (m, h, w, c)).reshape(m, -1) * self.radius)

    def _propose(
        self,
        rng: np.random.Generator,
        delta: FloatArray,
        mask: BoolArray,
        hwc: tuple[int, int, int],
    ) -> FloatArray:
        raise NotImplementedError

    def _width(self, spent: int) -> int:
        """Candidates per point per round: one at first, more once steps rarely improve.

        Early on most steps lower the loss and each builds on the last, so the
        search stays sequential; later almost every step fails, and trying a
        few candidates from the same point in one call costs the same queries
        but far fewer round trips to the target.
        """
        if spent < self.warmup:
            return 1
        return int(min(self.max_width, 1 + (spent - self.warmup) // self.warmup))

    def _attack(self, book: Book, rng: np.random.Generator) -> None:
        space = book.space
        hwc = _grid(space.shape)
        free = space.free
        rows = np.arange(book.n)
        delta = self._init_delta(rng, book.n, hwc) * free
        x = space.project(book.x0 + delta, book.x0)
        delta = x - book.x0
        s, _ = book.scores(rows, x)
        loss = margin(s, book.y0, book.targets)
        spent = 0  # queries per still-active point since the start (all move in step)
        while True:
            active = book.remaining() > 0
            if self.stop_on_success:
                active &= loss >= 0
            idx = np.flatnonzero(active)
            if idx.size == 0:
                return
            k = min(self._width(spent), int(book.remaining(idx).min()))
            mask = _windows(rng, idx.size * k, hwc, _fraction(spent, self.p_init)) & free
            rep = np.repeat(idx, k)
            new_delta = self._propose(rng, delta[rep], mask, hwc)
            cand = space.project(book.x0[rep] + new_delta, book.x0[rep])
            s, _ = book.scores(rep, cand)
            tgt = None if book.targets is None else book.targets[rep]
            new_loss = margin(s, book.y0[rep], tgt).reshape(idx.size, k)
            pick = np.argmin(new_loss, axis=1)
            best = new_loss[np.arange(idx.size), pick]
            better = best < loss[idx]
            chosen = (np.arange(idx.size) * k + pick)[better]
            delta[idx[better]] = cand[chosen] - book.x0[idx[better]]
            loss[idx[better]] = best[better]
            spent += k


class SquareLinf(_Square):
    name = "square-linf"
    norm = Norm.LINF

    def _propose(
        self,
        rng: np.random.Generator,
        delta: FloatArray,
        mask: BoolArray,
        hwc: tuple[int, int, int],
    ) -> FloatArray:
        m = delta.shape[0]
        h, w, c = hwc
        per_channel = rng.choice([-1.0, 1.0], size=(m, 1, 1, c))
        vals = np.broadcast_to(per_channel, (m, h, w, c)).reshape(m, -1) * self.radius
        if h == 1:
            vals = rng.choice([-1.0, 1.0], size=delta.shape) * self.radius
        return np.where(mask, vals, delta)


class SquareL2(_Square):
    name = "square-l2"
    norm = Norm.L2
    default_radius = 2.0

    def _init_delta(
        self, rng: np.random.Generator, m: int, hwc: tuple[int, int, int]
    ) -> FloatArray:
        d = rng.standard_normal((m, hwc[0] * hwc[1] * hwc[2]))
        return np.asarray(d / np.linalg.norm(d, axis=1, keepdims=True) * self.radius * 0.5)

    def _propose(
        self,
        rng: np.random.Generator,
        delta: FloatArray,
        mask: BoolArray,
        hwc: tuple[int, int, int],
    ) -> FloatArray:
        # refill the window with a fresh pattern carrying the window's old mass
        # plus whatever L2 budget is still unused
        inside = np.sum(np.where(mask, delta, 0.0) ** 2, axis=1)
        total = np.sum(delta**2, axis=1)
        spare = np.maximum(self.radius**2 - total, 0.0)
        mass = np.sqrt(inside + spare)
        pattern = rng.standard_normal(delta.shape) + np.sign(
            rng.standard_normal((delta.shape[0], 1))
        )
        pattern = np.where(mask, pattern, 0.0)
        pattern /= np.linalg.norm(pattern, axis=1, keepdims=True) + 1e-12
        return np.where(mask, pattern * mass[:, None], delta)
