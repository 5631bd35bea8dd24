"""HopSkipJump (Chen, Jordan, Wainwright 2020): label-only, L2 or L∞.

From a point on the decision boundary it estimates the boundary's normal from
the labels of random probes around it (Monte-Carlo sign gradient), steps along
it with a geometric step-size search, and returns to the boundary by binary
search. All points advance together; every probe is one batched query.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bastion.attacks.base import Norm
from bastion.attacks.evasion.book import Book
from bastion.attacks.evasion.boundary_search import to_boundary
from bastion.attacks.evasion.engine import EvasionAttack, random_start
from bastion.attacks.oracle import Access

__all__ = ["HopSkipJumpL2", "HopSkipJumpLinf"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class _HopSkipJump(EvasionAttack):
    access = Access.LABEL
    patience = 1  # iterations a converged success is given to shrink by `min_gain`

    def __init__(
        self,
        *,
        eps: float | None = None,
        init_evals: int = 30,
        max_evals: int = 200,
        max_iter: int = 64,
        stop_on_success: bool = True,
        min_gain: float = 0.05,
    ) -> None:
        """Without `stop_on_success` a point keeps shrinking its perturbation after success
        until an iteration shrinks it by less than `min_gain` (relative; 0: spend the
        whole budget): the queries after that buy almost nothing."""
        super().__init__(eps=eps, init_evals=init_evals, max_evals=max_evals, max_iter=max_iter)
        self.min_gain = min_gain
        self.init_evals = init_evals
        self.max_evals = max_evals
        self.max_iter = max_iter
        self.stop_on_success = stop_on_success

    def _theta(self, dim: int) -> float:
        return 1.0 / (np.sqrt(dim) * dim) if self.norm is Norm.L2 else 1.0 / (dim * dim)

    def _tol(self, book: Book, rows: IntArray) -> FloatArray:
        theta = self._theta(book.space.dim)
        if self.norm is Norm.L2:
            return np.full(rows.size, theta)
        span = float(np.max(book.space.span))
        return np.minimum(book.dist[rows] * theta, theta * span)

    def _attack(self, book: Book, rng: np.random.Generator) -> None:
        space = book.space
        free = space.free.astype(np.float64)
        dim = max(int(free.sum()), 1)
        rows = np.arange(book.n)
        random_start(book, rng, rows, tries=20)
        rows = rows[book.is_adversarial()]
        cur = to_boundary(book, rows, book.best[rows].copy(), self.norm, self._tol(book, rows))
        span = float(np.max(space.span))
        theta = self._theta(dim)
        history = [book.dist.copy()]  # best distance per point before each iteration
        for it in range(self.max_iter):
            keep = book.remaining(rows) > 12
            if self.stop_on_success:
                keep &= ~book.done()[rows]
            elif len(history) > self.patience:
                # a success whose perturbation stopped shrinking has converged
                old = history[-1 - self.patience][rows]
                keep &= ~(book.done()[rows] & (book.dist[rows] > (1.0 - self.min_gain) * old))
            history.append(book.dist.copy())
            rows, cur = rows[keep], cur[keep]
            if rows.size == 0:
                return
            x0 = book.x0[rows]
            dist = self.norm.of(cur - x0)
            # probe radius and number of probes grow with progress, as in the paper
            if it == 0:
                delta = np.full(rows.size, 0.1 * span)
            elif self.norm is Norm.L2:
                delta = np.sqrt(dim) * theta * dist
            else:
                delta = dim * theta * dist
            evals = min(int(self.init_evals * np.sqrt(it + 1)), self.max_evals)
            evals = min(evals, int(np.min(book.remaining(rows))) - 12)
            if evals < 2:
                return
            grad = self._gradient(book, rows, cur, delta, evals, free, rng)
            step_dir = grad if self.norm is Norm.L2 else np.sign(grad)
            size = dist / np.sqrt(it + 1)
            cand = cur.copy()
            pending = np.ones(rows.size, dtype=bool)
            for _ in range(10):
                idx = np.flatnonzero(pending & (book.remaining(rows) > 12))
                if idx.size == 0:
                    break
                trial = space.project(cur[idx] + size[idx, None] * step_dir[idx], x0[idx])
                ok = book.labels(rows[idx], trial)
                cand[idx[ok]] = trial[ok]
                pending[idx[ok]] = False
                size[idx[~ok]] /= 2.0
            cur = to_boundary(book, rows, cand, self.norm, self._tol(book, rows))

    def _gradient(
        self,
        book: Book,
        rows: IntArray,
        cur: FloatArray,
        delta: FloatArray,
        evals: int,
        free: FloatArray,
        rng: np.random.Generator,
    ) -> FloatArray:
        m, dim = rows.size, cur.shape[1]
        if self.norm is Norm.L2:
            u = rng.standard_normal((m, evals, dim))
        else:
            u = rng.uniform(-1.0, 1.0, (m, evals, dim))
        u *= free
        u /= np.linalg.norm(u, axis=2, keepdims=True) + 1e-12
        origin = np.repeat(book.x0[rows], evals, axis=0)
        probes = book.space.project(
            (cur[:, None, :] + delta[:, None, None] * u).reshape(-1, dim), origin
        )
        u = (probes.reshape(m, evals, dim) - cur[:, None, :]) / delta[:, None, None]
        adv = book.labels(np.repeat(rows, evals), probes).reshape(m, evals)
        f = np.where(adv, 1.0, -1.0)
        mean = f.mean(axis=1, keepdims=True)
        # baseline subtraction lowers variance unless all probes agree
        f = np.where(np.abs(mean) == 1.0, f, f - mean)
        grad = np.einsum("me,med->md", f, u) / evals
        return np.asarray(grad / (np.linalg.norm(grad, axis=1, keepdims=True) + 1e-12))


class HopSkipJumpL2(_HopSkipJump):
    name = "hopskipjump-l2"
    norm = Norm.L2


class HopSkipJumpLinf(_HopSkipJump):
    name = "hopskipjump-linf"
    norm = Norm.LINF
