"""Evaluation material: two small real tasks and realistic benign query streams.

A detector is only as good as its false-positive rate on the traffic real
users send, so the benign streams are deliberately awkward: every user has a
few interests (classes they mostly ask about), re-sends items verbatim,
re-sends lightly edited copies (shifts, brightness, noise, re-encoding for
images; jitter and rounding for rows), and sends bursts of variants of one
item. The image task is scikit-learn's digits, scaled to 32×32×3 with a colour
tint per image, so the per-query cost is measured at CIFAR size without a
download; the tabular task is scikit-learn's breast-cancer table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import UsageError

__all__ = ["MIN_QUERIES", "TASKS", "BenignStream", "Task", "benign_streams", "load_task"]

# digits32: images at CIFAR size; cancer: a real table, two classes, so easy to copy that ten
# label answers give a 0.99 copy; rows8: a generated eight-class table (scikit-learn's
# make_classification), where copying takes hundreds of answers
TASKS = ("digits32", "cancer", "rows8")

# the fewest queries a benign user sends: a copy that is good before this many answers is
# made before any per-principal test could tell its thief from a user
MIN_QUERIES = 5

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Task:
    """A model to guard plus the data split its detectors and attackers use."""

    name: str
    domain: str  # "image" | "tabular"
    eps_l2: float  # an adversarial example counts when it is this close (L2) to its seed
    eps_linf: float
    shape: tuple[int, ...]
    x_fit: FloatArray  # benign data the profile is fitted on
    x_test: FloatArray  # what benign users (and natural-data extraction) draw from
    y_test: npt.NDArray[np.int64]
    lower: FloatArray
    upper: FloatArray
    predict_proba: Callable[[npt.NDArray[Any]], FloatArray]
    n_classes: int


def load_task(name: str, seed: int = 0) -> Task:
    from sklearn.datasets import load_breast_cancer, load_digits, make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    rng = np.random.default_rng(seed)
    if name == "digits32":
        d = load_digits()
        img = np.kron(d.images / 16.0, np.ones((4, 4)))  # (n, 32, 32)
        tint = 0.5 + 0.5 * rng.random((len(img), 1, 1, 3))
        x = np.clip(img[..., None] * tint + 0.03 * rng.random((len(img), 1, 1, 3)), 0, 1)
        shape: tuple[int, ...] = (32, 32, 3)
        y = d.target
        domain = "image"
    elif name in ("cancer", "rows8"):
        if name == "cancer":
            x, y = load_breast_cancer(return_X_y=True)
        else:  # eight classes: a copy needs hundreds of queries, not ten (see `TASKS`)
            x, y = make_classification(
                n_samples=3000, n_features=20, n_informative=12, n_redundant=4, n_classes=8,
                n_clusters_per_class=1, class_sep=1.5, random_state=seed,
            )  # fmt: skip
        x = (x - x.mean(0)) / x.std(0)  # rows arrive standardised: eps means the same per feature
        shape = (x.shape[1],)
        domain = "tabular"
    else:
        raise UsageError(f"unknown evaluation task {name!r}", hint=f"one of: {', '.join(TASKS)}")
    flat = x.reshape(len(x), -1).astype(np.float64)
    xa, xb, ya, yb = train_test_split(flat, y, test_size=0.4, random_state=seed, stratify=y)
    steps: list[Any] = [StandardScaler(), LogisticRegression(max_iter=300, C=0.5)]
    if domain == "image":  # the model sees 16×16×3 (cheap to fit, still a 3072-input model)
        steps.insert(0, FunctionTransformer(_pool2))
    model = make_pipeline(*steps)
    model.fit(xa, ya)
    if domain == "image":
        lower, upper = np.zeros(flat.shape[1]), np.ones(flat.shape[1])
    else:
        lower, upper = flat.min(0), flat.max(0)

    def proba(inp: npt.NDArray[Any]) -> FloatArray:
        a = np.asarray(inp, dtype=np.float64).reshape(-1, flat.shape[1])
        return np.asarray(model.predict_proba(a), dtype=np.float64)

    eps = (2.0, 0.05) if domain == "image" else (1.0, 0.3)
    return Task(
        name,
        domain,
        *eps,
        shape,
        xa,
        xb,
        yb.astype(np.int64),
        lower,
        upper,
        proba,
        int(y.max()) + 1,
    )


def _pool2(x: npt.NDArray[Any]) -> FloatArray:
    a = np.asarray(x, dtype=np.float64).reshape(-1, 16, 2, 16, 2, 3)
    return np.asarray(a.mean(axis=(2, 4)).reshape(len(a), -1), dtype=np.float64)


@dataclass(frozen=True)
class BenignStream:
    principal: str
    queries: FloatArray  # (n, dim), in sending order


def _edit(task: Task, row: FloatArray, rng: np.random.Generator) -> FloatArray:
    """A light, natural edit of an item a user already sent."""
    if task.domain == "image":
        img = row.reshape(task.shape)
        kind = rng.integers(4)
        if kind == 0:
            img = np.roll(img, tuple(rng.integers(-2, 3, size=2)), axis=(0, 1))
        elif kind == 1:
            img = img * rng.uniform(0.8, 1.2) + rng.uniform(-0.1, 0.1)
        elif kind == 2:
            img = img + rng.normal(0, 0.03, img.shape)
        else:
            img = np.round(img * 31) / 31  # re-encoded at lower depth
        out = np.clip(img.reshape(-1), task.lower, task.upper)
    else:
        span = task.upper - task.lower
        out = row + rng.normal(0, 0.01, row.shape) * span * (rng.random(row.shape) < 0.3)
        out = np.clip(np.round(out, 3), task.lower, task.upper)
    return np.asarray(out, dtype=np.float64)


def benign_streams(
    task: Task, n_principals: int, seed: int = 1, mean_queries: int = 40
) -> list[BenignStream]:
    """Users with interests, repeats, near-duplicates and bursts (see the module doc)."""
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(task.y_test == c) for c in range(task.n_classes)]
    by_class = [c for c in by_class if c.size]
    out = []
    for p in range(n_principals):
        n = int(min(400, max(MIN_QUERIES, rng.geometric(1.0 / mean_queries))))
        interests = rng.choice(
            len(by_class), size=min(len(by_class), int(rng.integers(1, 4))), replace=False
        )
        sent: list[FloatArray] = []
        while len(sent) < n:
            r = rng.random()
            if sent and r < 0.12:
                sent.append(sent[rng.integers(len(sent))].copy())  # verbatim repeat
            elif sent and r < 0.27:
                sent.append(_edit(task, sent[rng.integers(len(sent))], rng))
            elif r < 0.32:
                item = task.x_test[rng.choice(by_class[rng.choice(interests)])]
                burst = int(rng.integers(2, 5))
                sent.append(item.copy())
                sent.extend(_edit(task, item, rng) for _ in range(burst))
            else:
                pool = by_class[rng.choice(interests)] if rng.random() < 0.8 else None
                idx = rng.choice(pool) if pool is not None else rng.integers(len(task.x_test))
                sent.append(task.x_test[idx].copy())
        out.append(BenignStream(f"user-{p:05d}", np.asarray(sent[:n])))
    return out
