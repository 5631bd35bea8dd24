"""Shared driver for evasion attacks: labels the points, runs the attack, measures it.

Each evasion attack only implements `_attack(book, rng)`; this driver asks the
target for each point's current label (one query per point, charged), runs the
attack under the per-point budget, and turns the book into an `AttackResult`
with the success-vs-queries curve.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from bastion.attacks.base import AttackData, AttackKind, AttackResult, Norm
from bastion.attacks.evasion.book import Book
from bastion.attacks.oracle import Access, Oracle
from bastion.attacks.space import Domain
from bastion.errors import BudgetExhausted, TargetError
from bastion.findings import Series

__all__ = ["EvasionAttack", "budget_grid"]


def budget_grid(budget: int) -> list[int]:
    """Roughly log-spaced query budgets up to `budget`, for the success curve."""
    grid = {round(v) for v in np.geomspace(1, max(budget, 1), num=24)}
    return sorted(g for g in grid if g >= 1)


class EvasionAttack:
    """Base class: subclasses set the class attributes and implement `_attack`."""

    name: ClassVar[str] = ""
    kind: ClassVar[AttackKind] = AttackKind.EVASION
    access: ClassVar[Access] = Access.LABEL
    domains: ClassVar[frozenset[Domain]] = frozenset({Domain.IMAGE, Domain.TABULAR})
    norm: Norm = Norm.L2

    def __init__(self, *, eps: float | None = None, **params: Any) -> None:
        self.eps = eps
        self.params = params

    def _attack(self, book: Book, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _metrics(self) -> dict[str, float]:
        """Attack-specific measured numbers added to the result's metrics."""
        return {}

    def run(self, oracle: Oracle, data: AttackData, *, budget: int, seed: int) -> AttackResult:
        start = time.perf_counter()
        spent_before = oracle.queries
        x0 = np.asarray(data.x, dtype=np.float64)
        n = x0.shape[0]
        scores0 = None
        if self.access is Access.SCORES:  # the same answer gives the first scores too
            y0, scores0 = oracle.answers(x0, origin=x0)
        else:
            y0 = oracle.labels(x0, origin=x0)  # the decision to flip
        book = Book(
            oracle,
            data.space,
            x0,
            y0,
            budget=budget - 1,
            norm=self.norm,
            eps=self.eps,
            targets=data.targets,
            pool=data.pool,
        )
        book.scores0 = scores0
        rng = np.random.default_rng(seed)
        stopped: str | None = None
        if budget > 1 and n:
            try:
                self._attack(book, rng)
            except BudgetExhausted:
                raise
            except TargetError as exc:
                # the endpoint cut the attack short (blocked, throttled): what the book
                # holds was answered by the target, so it is measured and is reported
                stopped = str(exc).splitlines()[0][:300]
        book.queries += 1  # the labelling query above
        found = book.hit_at >= 0
        hit = np.where(found, book.hit_at + 1, -1)
        delta = book.best - x0
        adv = book.is_adversarial()
        l2 = np.where(adv, Norm.L2.of(delta), np.nan)
        linf = np.where(adv, Norm.LINF.of(delta), np.nan)
        grid = budget_grid(budget)
        curve = tuple(float(np.mean(found & (hit <= b))) if n else 0.0 for b in grid)
        series = Series(
            name=f"{self.name}: success vs queries",
            x_label="queries per point",
            y_label="success rate",
            x=tuple(float(g) for g in grid),
            y=curve,
            sample_size=n,
            group=self.name,
        )
        metrics = {
            "success_rate": float(found.mean()) if n else 0.0,
            "adversarial_rate": float(adv.mean()) if n else 0.0,
            "budget_per_point": float(budget),
        }
        if self.eps is not None:
            metrics["eps"] = float(self.eps)
        if stopped is not None:
            metrics["stopped_by_endpoint"] = 1.0
        metrics.update(self._metrics())
        params: dict[str, Any] = {
            "norm": self.norm.value,
            "targeted": data.targets is not None,
            "seed": seed,
            **self.params,
        }
        if stopped is not None:
            params["stopped_by_endpoint"] = stopped
        return AttackResult(
            attack=self.name,
            kind=self.kind,
            access=self.access,
            n=n,
            total_queries=oracle.queries - spent_before,
            wall_time_s=time.perf_counter() - start,
            metrics=metrics,
            success=found,
            queries=np.where(found, hit, book.queries).astype(np.int64),
            spent=book.queries.copy(),
            adversarials=book.best.copy(),
            l2=l2,
            linf=linf,
            series=(series,),
            params=params,
        )


def random_start(
    book: Book, rng: np.random.Generator, rows: npt.NDArray[np.int64], tries: int
) -> None:
    """Find any adversarial per row: first the other attacked points that the target
    already puts in another (or the target) class, projected onto this point's
    constraints — a natural starting point any attacker has — then uniform noise."""
    space = book.space
    if book.n > 1:
        for _ in range(3):
            todo = rows[~book.is_adversarial()[rows] & (book.remaining(rows) > 0)]
            pick = np.full(todo.size, -1)
            for i, r in enumerate(todo):
                ok = book.adversarial(book.y0, np.full(book.n, r))
                same = np.flatnonzero(ok)
                if same.size:
                    pick[i] = rng.choice(same)
            todo, pick = todo[pick >= 0], pick[pick >= 0]
            if todo.size == 0:
                break
            book.labels(todo, space.project(book.x0[pick], book.x0[todo]))
    for _ in range(tries):
        todo = rows[~book.is_adversarial()[rows] & (book.remaining(rows) > 0)]
        if todo.size == 0:
            return
        noise = space.lower + rng.random((todo.size, space.dim)) * space.span
        cand = space.project(noise, book.x0[todo])
        book.labels(todo, cand)
