"""Boundary attack (Brendel, Rauber, Bethge 2018): label-only L2 random walk.

Starting from an adversarial on the boundary, each step moves randomly along
the sphere around the clean point and then a little towards it; a step is kept
only when the target is still fooled. Step sizes adapt per point to the recent
acceptance rate. One query per point per step, all points in one batch.
"""

from __future__ import annotations

import numpy as np

from bastion.attacks.base import Norm
from bastion.attacks.evasion.book import Book
from bastion.attacks.evasion.boundary_search import to_boundary
from bastion.attacks.evasion.engine import EvasionAttack, random_start
from bastion.attacks.oracle import Access

__all__ = ["BoundaryAttack"]


class BoundaryAttack(EvasionAttack):
    name = "boundary"
    norm = Norm.L2
    access = Access.LABEL

    def __init__(
        self,
        *,
        eps: float | None = None,
        spherical: float = 0.1,
        source: float = 0.05,
        stop_on_success: bool = True,
    ) -> None:
        super().__init__(eps=eps, spherical=spherical, source=source)
        self.spherical = spherical
        self.source = source
        self.stop_on_success = stop_on_success

    def _attack(self, book: Book, rng: np.random.Generator) -> None:
        space = book.space
        free = space.free.astype(np.float64)
        rows = np.arange(book.n)
        random_start(book, rng, rows, tries=20)
        rows = rows[book.is_adversarial()]
        dim = space.dim
        cur = to_boundary(book, rows, book.best[rows].copy(), Norm.L2, 1.0 / (dim * np.sqrt(dim)))
        sph = np.full(rows.size, self.spherical)
        src = np.full(rows.size, self.source)
        rate = np.full(rows.size, 0.3)
        step = 0
        while True:
            live = book.remaining(rows) > 0
            if self.stop_on_success:
                live &= ~book.done()[rows]
            j = np.flatnonzero(live)
            if j.size == 0:
                return
            r = rows[j]
            x0 = book.x0[r]
            diff = cur[j] - x0
            dist = np.linalg.norm(diff, axis=1, keepdims=True) + 1e-12
            unit = diff / dist
            eta = rng.standard_normal(diff.shape) * free
            eta -= np.sum(eta * unit, axis=1, keepdims=True) * unit
            eta *= sph[j, None] * dist / (np.linalg.norm(eta, axis=1, keepdims=True) + 1e-12)
            onto = x0 + (diff + eta) * dist / (np.linalg.norm(diff + eta, axis=1, keepdims=True))
            cand = space.project(onto + src[j, None] * (x0 - onto), x0)
            ok = book.labels(r, cand)
            cur[j[ok]] = cand[ok]
            rate[j] = 0.9 * rate[j] + 0.1 * ok
            step += 1
            if step % 10 == 0:
                grow, shrink = rate > 0.5, rate < 0.2
                sph = np.where(grow, sph * 1.5, np.where(shrink, sph / 1.5, sph))
                src = np.where(grow, src * 1.5, np.where(shrink, src / 1.5, src))
                src = np.clip(src, 1e-4, 0.5)
                sph = np.clip(sph, 1e-3, 1.0)
