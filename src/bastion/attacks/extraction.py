"""Model extraction: how closely an attacker can copy the model within a query budget.

The attacker chooses inputs by one of four strategies — its own natural data
(`natural`), uniform noise in the input space (`random`), Jacobian-based
augmentation around what it has (`jacobian`, Papernot et al. 2017), or inputs
its current copy is least sure about (`active`) — labels them through the API
(or takes the scores when the API gives them), and trains a scikit-learn
surrogate. Fidelity (agreement with the target on held-out inputs) and
accuracy are measured at several budgets, giving a curve, not one number.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from bastion.attacks.base import AttackData, AttackKind, AttackResult
from bastion.attacks.oracle import HELD, Access, Oracle
from bastion.attacks.space import Domain
from bastion.attacks.surrogate import fit_surrogate, input_gradient, predict_labels
from bastion.errors import BudgetExhausted, TargetError, UsageError
from bastion.findings import Series

__all__ = [
    "ActiveExtraction",
    "Extraction",
    "JacobianExtraction",
    "NaturalExtraction",
    "RandomExtraction",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CHECKPOINTS = (50, 100, 200, 450, 1000, 2000, 5000, 10000)


class Extraction:
    """Base: subclasses pick the strategy. `budget` is the total training queries."""

    name: ClassVar[str] = "extraction"
    kind: ClassVar[AttackKind] = AttackKind.EXTRACTION
    access: ClassVar[Access] = Access.LABEL
    domains: ClassVar[frozenset[Domain]] = frozenset({Domain.IMAGE, Domain.TABULAR})
    strategy: ClassVar[str] = "natural"

    def __init__(
        self,
        *,
        surrogate: str = "mlp",
        hidden: tuple[int, ...] = (64,),
        soft: bool = False,
        step: float = 0.1,
        checkpoints: tuple[int, ...] = CHECKPOINTS,
    ) -> None:
        self.surrogate = surrogate
        self.hidden = hidden
        self.soft = soft
        self.step = step
        self.checkpoints = checkpoints

    def run(self, oracle: Oracle, data: AttackData, *, budget: int, seed: int) -> AttackResult:
        if data.x_eval is None:
            raise UsageError(
                "extraction needs held-out inputs to measure fidelity on",
                hint="give x_eval in --data (or a larger --data so some can be held out)",
            )
        start = time.perf_counter()
        rng = np.random.default_rng(seed)
        before = oracle.queries
        pool = _held_out(data.pool if data.pool is not None else data.x, data.x_eval)
        soft = self.soft and oracle.access is Access.SCORES
        # rows a guard holds for review are dropped, as an attacker would drop them
        truth_all = oracle.labels(data.x_eval, unanswered=True)
        eval_queries = oracle.queries - before
        seen = truth_all != HELD
        if not seen.any():
            raise TargetError(
                f"the endpoint held all {truth_all.size} evaluation rows without an answer",
                hint="fidelity cannot be measured when nothing is answered",
            )
        x_eval, truth_eval = data.x_eval[seen], truth_all[seen]
        y_eval = None if data.y_eval is None else data.y_eval[seen]
        baseline = self._baseline(data, x_eval, truth_eval, seed)
        xs: list[FloatArray] = []
        ys: list[Any] = []
        marks = sorted({c for c in self.checkpoints if c < budget} | {budget})
        fid, acc, model = [], [], None
        stopped: str | None = None
        used = np.zeros(pool.shape[0], dtype=bool)
        sent, at, held_before = 0, [], oracle.held
        for mark in marks:
            need = mark - sent
            if need <= 0:
                continue
            batch = self._choose(need, pool, used, xs, ys, model, data, rng)
            try:
                if soft:
                    labels, scores = oracle.answers(batch, unanswered=True)
                    answers: Any = np.nan_to_num(scores)
                else:
                    labels = answers = oracle.labels(batch, unanswered=True)
            except BudgetExhausted:
                raise
            except TargetError as exc:
                if model is None:
                    raise  # nothing was learnt: the caller reports the stop
                # cut short: the curve so far was measured, the copy stands as it is
                stopped = str(exc).splitlines()[0][:300]
                break
            sent += len(batch)
            kept = labels != HELD
            if not kept.any():
                continue
            xs.append(batch[kept])
            ys.append(answers[kept])
            model = fit_surrogate(
                np.concatenate(xs),
                np.concatenate(ys),
                kind=self.surrogate,
                hidden=self.hidden,
                seed=seed,
            )
            pred = predict_labels(model, x_eval)
            at.append(float(sent))
            fid.append(float(np.mean(pred == truth_eval)))
            acc.append(float(np.mean(pred == y_eval)) if y_eval is not None else np.nan)
        if model is None:
            raise TargetError(
                f"the endpoint held every one of the {sent} rows sent without an answer",
                hint="nothing was learnt: the copy could not be trained",
            )
        spent = oracle.queries - before
        held = oracle.held - held_before
        x_axis = tuple(at)
        series = [
            Series(
                name=f"{self.name}: fidelity vs queries",
                x_label="queries",
                y_label="fidelity",
                x=x_axis,
                y=tuple(fid),
                sample_size=int(x_eval.shape[0]),
                group=self.name,
            )
        ]
        metrics = {
            "fidelity": fid[-1] if fid else 0.0,
            "training_queries": float(spent - eval_queries),
            "evaluation_queries": float(eval_queries),
            "soft_labels": float(soft),
            **({"stopped_by_endpoint": 1.0} if stopped else {}),
            **({"held_rows": float(held)} if held else {}),
            **(
                {"baseline_fidelity": baseline[0], "baseline_rows": float(baseline[1])}
                if baseline
                else {}
            ),
            **{f"fidelity_at_{int(m)}": f for m, f in zip(x_axis, fid, strict=True)},
        }
        if y_eval is not None:
            metrics["accuracy"] = acc[-1] if acc else 0.0
            series.append(
                series[0].model_copy(
                    update={
                        "name": f"{self.name}: accuracy vs queries",
                        "y_label": "accuracy",
                        "y": tuple(acc),
                    }
                )
            )
        return AttackResult(
            attack=self.name,
            kind=self.kind,
            access=Access.SCORES if soft else Access.LABEL,
            n=int(x_eval.shape[0]),
            total_queries=spent,
            wall_time_s=time.perf_counter() - start,
            metrics=metrics,
            series=tuple(series),
            params={
                "strategy": self.strategy,
                "surrogate": self.surrogate,
                "seed": seed,
                **({"stopped_by_endpoint": stopped} if stopped else {}),
            },
        )

    def _baseline(
        self, data: AttackData, x_eval: FloatArray, truth_eval: IntArray, seed: int
    ) -> tuple[float, int] | None:
        """Agreement of a copy the attacker trains on its own labelled rows, with no query.

        Fidelity alone overstates what the API gives away: on a task with public
        labelled data a model trained on that data already agrees with the target
        on most inputs. The measured leak is the copy's fidelity above this figure.
        """
        x, y = data.labelled or (data.x, data.y)
        if y is None or x.shape[0] == 0:
            return None
        keep = _not_in(x, x_eval)
        if keep.sum() < 2 or np.unique(y[keep]).size < 2:
            return None
        model = fit_surrogate(x[keep], y[keep], kind=self.surrogate, hidden=self.hidden, seed=seed)
        pred = predict_labels(model, x_eval)
        return float(np.mean(pred == truth_eval)), int(keep.sum())

    def _natural(
        self,
        need: int,
        pool: FloatArray,
        used: npt.NDArray[np.bool_],
        rng: np.random.Generator,
        space: Any,
    ) -> FloatArray:
        free = np.flatnonzero(~used)
        take = rng.choice(free, size=min(need, free.size), replace=False) if free.size else free
        used[take] = True
        out = pool[take]
        if out.shape[0] < need:  # pool exhausted: jitter what we have
            extra = pool[rng.integers(0, pool.shape[0], need - out.shape[0])]
            extra = space.project(extra + rng.normal(0, 0.05, extra.shape) * space.span)
            out = np.concatenate([out, extra])
        return np.asarray(out, dtype=np.float64)

    def _choose(
        self,
        need: int,
        pool: FloatArray,
        used: npt.NDArray[np.bool_],
        xs: list[FloatArray],
        ys: list[Any],
        model: Any,
        data: AttackData,
        rng: np.random.Generator,
    ) -> FloatArray:
        return self._natural(need, pool, used, rng, data.space)


class NaturalExtraction(Extraction):
    name = "extraction-natural"
    strategy = "natural"


class RandomExtraction(Extraction):
    name = "extraction-random"
    strategy = "random"

    def _choose(
        self,
        need: int,
        pool: FloatArray,
        used: npt.NDArray[np.bool_],
        xs: list[FloatArray],
        ys: list[Any],
        model: Any,
        data: AttackData,
        rng: np.random.Generator,
    ) -> FloatArray:
        s = data.space
        return s.project(s.lower + rng.random((need, s.dim)) * s.span)


class JacobianExtraction(Extraction):
    """Seeds from natural data, then steps along the copy's gradient to find the boundary."""

    name = "extraction-jacobian"
    strategy = "jacobian"

    def _choose(
        self,
        need: int,
        pool: FloatArray,
        used: npt.NDArray[np.bool_],
        xs: list[FloatArray],
        ys: list[Any],
        model: Any,
        data: AttackData,
        rng: np.random.Generator,
    ) -> FloatArray:
        if model is None or not hasattr(model, "coefs_") or not hasattr(model, "classes_"):
            return self._natural(need, pool, used, rng, data.space)
        x = np.concatenate(xs)
        y = np.concatenate(ys)
        labels = y if y.ndim == 1 else np.argmax(y, axis=1)
        pick = rng.integers(0, x.shape[0], need)
        known = np.isin(labels[pick], model.classes_)
        grad = np.zeros((need, x.shape[1]))
        grad[known] = input_gradient(model, x[pick][known], labels[pick][known])
        sign = rng.choice([-1.0, 1.0], size=(need, 1))  # both sides of the boundary
        step = self.step * data.space.span
        return data.space.project(x[pick] + sign * step * np.sign(grad))


class ActiveExtraction(Extraction):
    """Uncertainty sampling: ask about the natural inputs the copy is least sure of."""

    name = "extraction-active"
    strategy = "active"

    def _choose(
        self,
        need: int,
        pool: FloatArray,
        used: npt.NDArray[np.bool_],
        xs: list[FloatArray],
        ys: list[Any],
        model: Any,
        data: AttackData,
        rng: np.random.Generator,
    ) -> FloatArray:
        free = np.flatnonzero(~used)
        if model is None or not hasattr(model, "predict_proba") or free.size <= need:
            return self._natural(need, pool, used, rng, data.space)
        cand = free if free.size <= 5000 else rng.choice(free, 5000, replace=False)
        p = np.sort(model.predict_proba(pool[cand]), axis=1)
        margin = p[:, -1] - (p[:, -2] if p.shape[1] > 1 else 0.0)
        # half by uncertainty, half at random so the copy keeps seeing the whole space
        n_unsure = need // 2
        unsure = cand[np.argsort(margin)[:n_unsure]]
        used[unsure] = True
        rest = self._natural(need - n_unsure, pool, used, rng, data.space)
        return np.concatenate([pool[unsure], rest])


def _held_out(pool: FloatArray, x_eval: FloatArray) -> FloatArray:
    """The pool without the rows fidelity is measured on.

    A copy evaluated on inputs it was trained on looks better than it is; the
    attacker's data may well hold the same rows in both (one file, two roles).
    """
    keep = _not_in(pool, x_eval)
    if not keep.any():
        raise UsageError(
            "every row of the extraction pool is also an evaluation row: fidelity would be "
            "measured on the copy's own training inputs",
            hint="give separate rows as pool and x_eval in --data",
        )
    return np.asarray(pool[keep], dtype=np.float64)


def _not_in(rows: FloatArray, x_eval: FloatArray) -> npt.NDArray[np.bool_]:
    """Which rows are not also evaluation rows (byte-equal as float64)."""
    flat_eval = x_eval.reshape(x_eval.shape[0], -1)
    seen = {row.tobytes() for row in np.ascontiguousarray(flat_eval, dtype=np.float64)}
    flat = np.ascontiguousarray(rows.reshape(rows.shape[0], -1), dtype=np.float64)
    return np.array([row.tobytes() not in seen for row in flat], dtype=bool)
