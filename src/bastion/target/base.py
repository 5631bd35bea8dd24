"""What every target (in-process model, HTTP endpoint) gives a caller.

A target answers exactly what a client of the deployed system would see: the
label, the top-k, or the scores, at the precision the service returns. Attacks
and probes only ever see a target through the query ledger, which counts every
input sent, so the access an attacker really has is the access we measure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["OutputKind", "QueryResult", "Target", "TargetInfo"]


class OutputKind(StrEnum):
    """Ordered from least to most revealing."""

    LABEL = "label"
    TOP_K = "top_k"
    SCORES = "scores"
    LOGITS = "logits"

    @property
    def rank(self) -> int:
        return list(OutputKind).index(self)


@dataclass(frozen=True)
class TargetInfo:
    name: str
    output: OutputKind
    n_classes: int | None = None
    input_shape: tuple[int, ...] | None = None
    dtype: str = "float32"
    bounds: tuple[float, float] | None = None
    classes: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryResult:
    """The answer to one batch, one row per input.

    `labels` holds class indices. `scores` is None when the target exposes labels
    only; for top-k answers, classes that were not returned are NaN. The byte
    counts are what crossed the wire (0 for in-process targets), so the ledger
    can report the traffic an attack costs.
    """

    labels: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64] | None
    latency_s: float
    status: int = 200
    raw: tuple[Any, ...] = ()
    bytes_sent: int = 0
    bytes_received: int = 0

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@runtime_checkable
class Target(Protocol):
    def info(self) -> TargetInfo: ...

    def query(self, inputs: npt.NDArray[Any]) -> QueryResult: ...

    def close(self) -> None: ...
