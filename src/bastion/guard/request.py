"""The values that flow through the guard: a request, a prediction, and a policy's verdict.

These are plain data, free of any web framework, so that the same policies run
inside a Python process, an ASGI app or a reverse proxy. Adapters translate
their protocol into a `Request` and a `Prediction` back into their protocol.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "Allow",
    "Deny",
    "Prediction",
    "Principal",
    "Request",
    "Transform",
    "Verdict",
]

# request ids: unique per process without a urandom syscall per request
_ID_PREFIX = os.urandom(6).hex() + "-"
_ID_COUNTER = itertools.count(1)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: who it is and what it may do."""

    id: str
    scopes: frozenset[str] = frozenset()

    def has(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass
class Request:
    """One prediction request as the guard sees it, whatever protocol carried it.

    `headers` are lower-cased; `protocol` is "oip", "json" or "inproc";
    `size_bytes` is the size of the body as received (0 in-process).
    """

    inputs: dict[str, npt.NDArray[Any]]
    headers: Mapping[str, str] = field(default_factory=dict)
    protocol: str = "inproc"
    model_name: str = ""
    size_bytes: int = 0
    principal: Principal | None = None
    id: str = field(default_factory=lambda: f"{_ID_PREFIX}{next(_ID_COUNTER):x}")
    received_at: float = field(default_factory=time.time)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def principal_id(self) -> str:
        return self.principal.id if self.principal else "anonymous"

    @property
    def rows(self) -> int:
        """Rows in the batch (first dimension of the first input); 1 for a scalar input."""
        for arr in self.inputs.values():
            return int(arr.shape[0]) if arr.ndim else 1
        return 0

    def digest(self) -> str:
        """SHA-256 of the inputs (names, dtypes, shapes and bytes) for the audit record."""
        h = hashlib.sha256()
        for name in sorted(self.inputs) if len(self.inputs) > 1 else self.inputs:
            arr = np.ascontiguousarray(self.inputs[name])
            h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
            h.update(arr.data if arr.ndim else arr.tobytes())  # the bytes, without a copy
        return h.hexdigest()


class _Keep:
    """The `with_` default for fields that may legitimately be set to None."""


_KEEP = _Keep()


@dataclass(frozen=True)
class Prediction:
    """The model's answer, one row per input row.

    `scores` is None once a policy has reduced the answer to labels; `top_k`
    set means only that many (class, score) pairs per row may be returned.
    `classes` names the columns of `scores` when the model provides them.
    """

    labels: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64] | None = None
    top_k: int | None = None
    classes: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_scores(
        cls, scores: npt.ArrayLike, classes: tuple[str, ...] | None = None
    ) -> Prediction:
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim == 1:
            s = s.reshape(1, -1)
        return cls(labels=s.argmax(axis=1).astype(np.int64), scores=s, classes=classes)

    def lowest_confidence(self) -> float | None:
        """The smallest per-row confidence (NaN if a score is NaN), or None without scores."""
        s = self.scores
        if s is None or s.size == 0:
            return None
        if self.top_k is None and s.size <= 256:  # plain Python beats numpy's call overhead
            rows = s.tolist()
            if all(math.isfinite(sum(r)) for r in rows):  # no NaN/inf: max/min are exact
                return float(min(max(r) for r in rows))
        conf = self.confidence()
        assert conf is not None
        return float(conf.min())

    def confidence(self) -> npt.NDArray[np.float64] | None:
        """Highest score per row, or None when the scores are gone."""
        if self.scores is None:
            return None
        if self.top_k is None:  # full scores have no NaN holes; max is much cheaper
            return np.asarray(self.scores.max(axis=1), dtype=np.float64)
        return np.asarray(np.nanmax(self.scores, axis=1), dtype=np.float64)

    def with_(
        self,
        *,
        labels: npt.NDArray[np.int64] | None = None,
        scores: npt.NDArray[np.float64] | _Keep | None = _KEEP,
        top_k: int | _Keep | None = _KEEP,
        classes: tuple[str, ...] | _Keep | None = _KEEP,
        extra: dict[str, Any] | None = None,
    ) -> Prediction:
        """A copy with some fields changed (`scores=None` drops the scores).

        Written out rather than `dataclasses.replace`, which costs several times more
        and runs on every answer (decoding, decision, minimisation).
        """
        return Prediction(
            self.labels if labels is None else labels,
            self.scores if isinstance(scores, _Keep) else scores,
            self.top_k if isinstance(top_k, _Keep) else top_k,
            self.classes if isinstance(classes, _Keep) else classes,
            self.extra if extra is None else extra,
        )


@dataclass(frozen=True)
class Allow:
    """Go on; `headers` are added to the eventual response (e.g. RateLimit-*)."""

    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Deny:
    """Stop here and answer with `status`.

    `reason` is machine-readable (`rate_limited`, `invalid_input`, ...), `message`
    is for a human, and `body` may carry extra JSON fields (e.g. a review case id).
    """

    status: int
    reason: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)
    decision: str = "deny"


@dataclass(frozen=True)
class Transform:
    """Go on with a changed request or prediction (the one of its phase).

    `reason` names the change for the audit record; `decision` overrides the
    final decision (e.g. "fallback" when a rule replaced the model's answer).
    """

    request: Request | None = None
    prediction: Prediction | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""
    decision: str | None = None


Verdict = Allow | Deny | Transform
