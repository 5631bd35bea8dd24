"""Transfer evasion: attack a copy of the model, replay on the target.

The copy is either a public model the manifest names (`public_model`: weights
anyone can download, read as data only), which costs no query, or a surrogate
MLP the attacker trains on its own natural inputs labelled through the API
(label access is enough). PGD adversarials are crafted on the copy with
gradients computed in numpy and sent to the target; a random restart of PGD
is tried while the per-point budget lasts. Labelling queries are reported
separately as `surrogate_queries`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bastion.attacks.base import AttackData, AttackResult, Norm
from bastion.attacks.evasion.book import Book
from bastion.attacks.evasion.engine import EvasionAttack
from bastion.attacks.oracle import Access, Oracle
from bastion.attacks.public_model import PublicMLP
from bastion.attacks.surrogate import fit_surrogate, pgd
from bastion.errors import ConfigError

__all__ = ["TransferPGD"]


class TransferPGD(EvasionAttack):
    name = "transfer-pgd"
    norm = Norm.LINF
    access = Access.LABEL
    uses_public_model = True

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
        self.public_model: PublicMLP | None = None

    def _metrics(self) -> dict[str, float]:
        return {"surrogate_queries": float(self.surrogate_queries)}

    def run(self, oracle: Oracle, data: AttackData, *, budget: int, seed: int) -> AttackResult:
        self.public_model = data.public_model
        self.params["surrogate"] = "public" if data.public_model is not None else "copy"
        if data.public_model is not None and data.public_model.n_features_in_ != data.space.dim:
            raise ConfigError(
                f"the public model takes {data.public_model.n_features_in_} features, "
                f"the target's inputs have {data.space.dim}",
                path=data.public_model.source,
                hint="name a public model with the same inputs as the attacked one",
            )
        return super().run(oracle, data, budget=budget, seed=seed)

    def _copy(self, book: Book, rng: np.random.Generator) -> Any:
        """A surrogate trained on the target's labels for the attacker's own inputs."""
        pool = book.pool if book.pool is not None else book.x0
        take = rng.permutation(pool.shape[0])[: self.pool_budget]
        pool = pool[take]
        before = book.oracle.queries
        pool_labels = book.oracle.labels(pool, origin=pool)
        self.surrogate_queries = book.oracle.queries - before
        x_train = np.concatenate([pool, book.x0])
        y_train = np.concatenate([pool_labels, book.y0])  # labels already paid for
        return fit_surrogate(x_train, y_train, hidden=self.hidden, seed=int(rng.integers(1 << 30)))

    def _attack(self, book: Book, rng: np.random.Generator) -> None:
        self.surrogate_queries = 0
        surrogate = self.public_model or self._copy(book, rng)
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
