"""Test targets: real scikit-learn models behind the `Target` protocol.

`InProcessTarget` is a deliberately tiny stand-in for the shared in-process
target (targets/probes work); it exposes labels or scores exactly as a deployed
service would, and `ScoresForbidden` proves an attack never reads scores.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bastion.target.base import OutputKind, QueryResult, TargetInfo


class InProcessTarget:
    def __init__(self, model: Any, output: OutputKind, n_features: int, name: str = "model"):
        self.model = model
        self._info = TargetInfo(
            name=name, output=output, n_classes=len(model.classes_), input_shape=(n_features,)
        )
        self.rows = 0

    def info(self) -> TargetInfo:
        return self._info

    def query(self, inputs: np.ndarray) -> QueryResult:
        start = time.perf_counter()
        x = np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1)
        self.rows += len(x)
        proba = self.model.predict_proba(x)
        labels = proba.argmax(axis=1).astype(np.int64)
        scores = None if self._info.output is OutputKind.LABEL else proba
        return QueryResult(labels, scores, time.perf_counter() - start)

    def close(self) -> None:
        pass


class _NoScores(QueryResult):
    @property  # type: ignore[override]
    def scores(self) -> Any:
        raise AssertionError("a label-only attack read scores")

    @scores.setter
    def scores(self, value: Any) -> None:
        pass


class ScoresForbidden(InProcessTarget):
    """Label-only target whose answers raise if anyone reads their scores."""

    def __init__(self, model: Any, n_features: int):
        super().__init__(model, OutputKind.LABEL, n_features, name="no-scores")

    def query(self, inputs: np.ndarray) -> QueryResult:
        r = super().query(inputs)
        return _NoScores(r.labels, None, r.latency_s)
