"""Transfer evasion: copy the model from its labels, attack the copy, replay on the target.

The attacker labels its own natural inputs through the API (label access is
enough), trains a surrogate MLP, crafts PGD adversarials on it with gradients
computed in numpy, and sends each to the target; a random restart of PGD is
tried while the per-point budget lasts. The labelling queries are reported
separately as `surrogate_queries`.
"""

from __future__ import annotations

import numpy as np

from bastion.attacks.base import Norm
from bastion.attacks.evasion.book import Book
from bastion.attacks.evasion.engine import EvasionAttack
from bastion.attacks.oracle import Access
from bastion.attacks.surrogate import fit_surrogate, pgd

__all__ = ["TransferPGD"]


class TransferPGD(EvasionAttack):
    name = "transfer-pgd"
    norm = Norm.LINF
    access = Access.LABEL

    def __init__(
        self,
        *,
        eps: float | None = 0.2,
        pool_budget: int = 1000,
        steps: int = 40,
        restarts: int = 5,
        hidden: tuple[int, ...] = (64,),
    ) -> None:
        super().__init__(eps=eps, pool_budget=pool_budget, steps=steps, transfer=True)
        self.radius = eps if eps is not None else 0.2
        self.pool_budget = pool_budget
        self.steps = steps
        self.restarts = restarts
        self.hidden = hidden
        self.surrogate_queries = 0

    def _metrics(self) -> dict[str, float]:
        return {"surrogate_queries": float(self.surrogate_queries)}

    def _attack(self, book: Book, rng: np.random.Generator) -> None:
        pool = book.pool if book.pool is not None else book.x0
        take = rng.permutation(pool.shape[0])[: self.pool_budget]
        pool = pool[take]
        before = book.oracle.queries
        pool_labels = book.oracle.labels(pool, origin=pool)
        self.surrogate_queries = book.oracle.queries - before
        x_train = np.concatenate([pool, book.x0])
        y_train = np.concatenate([pool_labels, book.y0])  # labels already paid for
        surrogate = fit_surrogate(
            x_train, y_train, hidden=self.hidden, seed=int(rng.integers(1 << 30))
        )
        if not hasattr(surrogate, "coefs_"):
            return  # every answer was one class: nothing to take a gradient of
        goal = book.targets if book.targets is not None else book.y0
        known = np.isin(goal, surrogate.classes_)
        for _ in range(self.restarts):
            idx = np.flatnonzero(~book.done() & (book.remaining() > 0) & known)
            if idx.size == 0:
                return
            adv = pgd(
                surrogate,
                book.space,
                book.x0[idx],
                goal[idx],
                eps=self.radius,
                norm=self.norm,
                steps=self.steps,
                targeted=book.targets is not None,
                rng=rng,
            )
            book.labels(idx, adv)
