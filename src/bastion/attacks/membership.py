"""Membership inference: can an attacker tell whether a record was in the training set?

Three attacks of increasing realism about what the attacker has: a threshold
on the model's confidence (or on its loss when the record's label is known),
shadow models trained on the attacker's own data to learn what "member"
answers look like, and a label-only attack that measures how robust the
model's decision is under small noise (members sit further from the boundary).
Each is scored by AUC and by the true-positive rate at 1 % false positives,
the number that matters when an attacker must be sure.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression

from bastion.attacks.base import AttackData, AttackKind, AttackResult
from bastion.attacks.oracle import Access, Oracle
from bastion.attacks.space import Domain
from bastion.attacks.surrogate import fit_surrogate
from bastion.errors import UsageError
from bastion.findings import Series

__all__ = ["LabelOnlyMembership", "LossMembership", "ShadowMembership", "auc", "tpr_at_fpr"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def auc(scores: FloatArray, is_member: npt.NDArray[np.bool_]) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    pos, neg = scores[is_member], scores[~is_member]
    if pos.size == 0 or neg.size == 0:
        return 0.5
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(order.size)
    allv = np.concatenate([pos, neg])[order]
    # average ranks over ties
    _, first, counts = np.unique(allv, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def roc(scores: FloatArray, is_member: npt.NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    thresholds = np.unique(scores)[::-1]
    pos = max(int(is_member.sum()), 1)
    neg = max(int((~is_member).sum()), 1)
    tpr = np.array([0.0] + [np.sum(scores[is_member] >= t) / pos for t in thresholds])
    fpr = np.array([0.0] + [np.sum(scores[~is_member] >= t) / neg for t in thresholds])
    return fpr, tpr


def tpr_at_fpr(
    scores: FloatArray, is_member: npt.NDArray[np.bool_], fpr_max: float = 0.01
) -> float:
    fpr, tpr = roc(scores, is_member)
    ok = fpr <= fpr_max
    return float(tpr[ok].max()) if ok.any() else 0.0


def _loss(scores: FloatArray, y: IntArray) -> FloatArray:
    p = np.nan_to_num(scores, nan=0.0)[np.arange(y.size), y]
    return np.asarray(-np.log(np.clip(p, 1e-12, None)))


class _Membership:
    kind: ClassVar[AttackKind] = AttackKind.MEMBERSHIP
    domains: ClassVar[frozenset[Domain]] = frozenset({Domain.IMAGE, Domain.TABULAR})
    name: ClassVar[str] = ""
    access: ClassVar[Access] = Access.SCORES
    per_record: int = 1

    def _score(
        self, oracle: Oracle, x: FloatArray, y: IntArray, data: AttackData, rng: np.random.Generator
    ) -> FloatArray:
        raise NotImplementedError

    def run(self, oracle: Oracle, data: AttackData, *, budget: int, seed: int) -> AttackResult:
        if data.members is None or data.nonmembers is None:
            raise UsageError(
                "membership inference needs candidate member and non-member records",
                hint="give members_x/members_y and nonmembers_x/nonmembers_y in --data",
            )
        start = time.perf_counter()
        rng = np.random.default_rng(seed)
        before = oracle.queries
        (xm, ym), (xn, yn) = data.members, data.nonmembers
        # keep the two groups balanced and within budget
        k = min(xm.shape[0], xn.shape[0], max(budget // (2 * self.per_record), 1))
        im = rng.choice(xm.shape[0], k, replace=False)
        inn = rng.choice(xn.shape[0], k, replace=False)
        x = np.concatenate([xm[im], xn[inn]])
        y = np.concatenate([ym[im], yn[inn]]).astype(np.int64)
        truth = np.concatenate([np.ones(k, dtype=bool), np.zeros(k, dtype=bool)])
        score = self._score(oracle, x, y, data, rng)
        fpr, tpr = roc(score, truth)
        metrics = {"auc": auc(score, truth), "tpr_at_1pct_fpr": tpr_at_fpr(score, truth)}
        metrics["advantage"] = float(np.max(tpr - fpr))
        series = Series(
            name=f"{self.name}: ROC",
            x_label="false positive rate",
            y_label="true positive rate",
            x=tuple(float(v) for v in fpr),
            y=tuple(float(v) for v in tpr),
            sample_size=2 * k,
            group=self.name,
        )
        return AttackResult(
            attack=self.name,
            kind=self.kind,
            access=self.access,
            n=2 * k,
            total_queries=oracle.queries - before,
            wall_time_s=time.perf_counter() - start,
            metrics=metrics,
            series=(series,),
            params={"seed": seed, "queries_per_record": self.per_record},
        )


class LossMembership(_Membership):
    """Low loss on a record's true label means it was probably trained on."""

    name = "membership-loss"

    def _score(
        self, oracle: Oracle, x: FloatArray, y: IntArray, data: AttackData, rng: Any
    ) -> FloatArray:
        return -_loss(oracle.scores(x), y)


def _features(scores: FloatArray, y: IntArray) -> FloatArray:
    s = np.nan_to_num(scores, nan=0.0)
    top = -np.sort(-s, axis=1)[:, :3]
    if top.shape[1] < 3:
        top = np.pad(top, ((0, 0), (0, 3 - top.shape[1])))
    return np.column_stack([top, -_loss(s, y), (s.argmax(axis=1) == y).astype(float)])


class ShadowMembership(_Membership):
    """Shadow models trained on the attacker's data teach a member/non-member classifier."""

    name = "membership-shadow"

    def __init__(self, *, shadows: int = 4, hidden: tuple[int, ...] = (64,)) -> None:
        self.shadows = shadows
        self.hidden = hidden

    def _score(
        self, oracle: Oracle, x: FloatArray, y: IntArray, data: AttackData, rng: Any
    ) -> FloatArray:
        if data.y is None or data.x.shape[0] < 20:
            raise UsageError(
                "shadow models need the attacker's own labelled data (x, y)",
                hint="add x and y to --data, disjoint from the candidate records",
            )
        feats, labels = [], []
        n = data.x.shape[0]
        for i in range(self.shadows):
            half = rng.permutation(n)
            inside, outside = half[: n // 2], half[n // 2 :]
            shadow = fit_surrogate(data.x[inside], data.y[inside], hidden=self.hidden, seed=i)
            for part, member in ((inside, 1), (outside, 0)):
                proba = np.zeros((part.size, int(data.y.max()) + 1))
                proba[:, shadow.classes_] = shadow.predict_proba(data.x[part])
                feats.append(_features(proba, data.y[part].astype(np.int64)))
                labels.append(np.full(part.size, member))
        judge = LogisticRegression(max_iter=500).fit(np.concatenate(feats), np.concatenate(labels))
        target_feats = _features(oracle.scores(x), y)
        return np.asarray(judge.predict_proba(target_feats)[:, 1])


class LabelOnlyMembership(_Membership):
    """Members keep their label under more noise: score = share of noisy copies kept."""

    name = "membership-label-only"
    access = Access.LABEL

    def __init__(self, *, copies: int = 24, sigma: float = 0.1) -> None:
        self.copies = copies
        self.sigma = sigma
        self.per_record = copies

    def _score(
        self, oracle: Oracle, x: FloatArray, y: IntArray, data: AttackData, rng: Any
    ) -> FloatArray:
        space = data.space
        n = x.shape[0]
        noisy = np.repeat(x, self.copies, axis=0)
        noisy += rng.normal(0.0, 1.0, noisy.shape) * self.sigma * space.span * space.free
        noisy = space.project(noisy, np.repeat(x, self.copies, axis=0))
        kept = oracle.labels(noisy, origin=np.repeat(x, self.copies, axis=0)) == np.repeat(
            y, self.copies
        )
        return np.asarray(kept.reshape(n, self.copies).mean(axis=1))
