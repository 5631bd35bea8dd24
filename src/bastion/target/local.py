"""In-process targets: a Python callable, a scikit-learn estimator, ONNX, torch.

They answer with the exposure a deployment would give — label, top-k or
scores, rounded to the declared decimals — so an attack run in-process sees the
same access as one run against the served model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import TargetError, UsageError
from bastion.target.base import OutputKind, QueryResult, TargetInfo

__all__ = ["CallableTarget", "SklearnTarget", "expose"]

Scores = npt.NDArray[np.float64]


def expose(
    scores: Scores, output: OutputKind, top_k: int | None = None, decimals: int | None = None
) -> tuple[npt.NDArray[np.int64], Scores | None]:
    """Cut full scores down to what a caller sees: labels, top-k (rest NaN) or rounded scores."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise TargetError(f"model returned scores of shape {scores.shape}; expected (n, classes)")
    labels = scores.argmax(axis=1).astype(np.int64)
    if output is OutputKind.LABEL:
        return labels, None
    shown = scores.copy()
    if output is OutputKind.TOP_K:
        k = top_k or 1
        if k < scores.shape[1]:
            hidden = np.argsort(-scores, axis=1)[:, k:]
            np.put_along_axis(shown, hidden, np.nan, axis=1)
    if decimals is not None:
        shown = np.round(shown, decimals)
    return labels, shown


class CallableTarget:
    """Any `f(inputs) -> scores (n, classes)` — or labels (n,) when `output` is LABEL."""

    def __init__(
        self,
        fn: Callable[[npt.NDArray[Any]], Any],
        *,
        output: OutputKind = OutputKind.SCORES,
        top_k: int | None = None,
        decimals: int | None = None,
        name: str = "callable",
        n_classes: int | None = None,
        input_shape: tuple[int, ...] | None = None,
        bounds: tuple[float, float] | None = None,
        classes: tuple[str, ...] | None = None,
    ) -> None:
        if output is OutputKind.TOP_K and not top_k:
            raise UsageError("output top_k needs top_k >= 1")
        self.fn = fn
        self.output = output
        self.top_k = top_k
        self.decimals = decimals
        self._info = TargetInfo(
            name=name,
            output=output,
            n_classes=n_classes,
            input_shape=input_shape,
            bounds=bounds,
            classes=classes,
            extra={"top_k": top_k, "decimals": decimals},
        )

    def info(self) -> TargetInfo:
        return self._info

    def close(self) -> None:
        return None

    def _scores(self, inputs: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.asarray(self.fn(inputs))

    def query(self, inputs: npt.NDArray[Any]) -> QueryResult:
        batch = np.asarray(inputs)
        t0 = time.perf_counter()
        try:
            out = self._scores(batch)
        except Exception as exc:  # the wrapped model's own failure, reported as ours
            raise TargetError(
                f"{self._info.name} failed on a batch of shape {batch.shape}: {exc}"
            ) from exc
        latency = time.perf_counter() - t0
        if out.ndim == 1:
            if self.output is not OutputKind.LABEL:
                raise TargetError(
                    f"{self._info.name} returned labels only, but output is {self.output}",
                    hint="declare output=OutputKind.LABEL",
                )
            return QueryResult(labels=out.astype(np.int64), scores=None, latency_s=latency)
        labels, scores = expose(out, self.output, self.top_k, self.decimals)
        return QueryResult(labels=labels, scores=scores, latency_s=latency)


class SklearnTarget(CallableTarget):
    """A fitted scikit-learn classifier; uses `predict_proba` when it exists, else `predict`."""

    def __init__(
        self,
        estimator: Any,
        *,
        output: OutputKind = OutputKind.SCORES,
        top_k: int | None = None,
        decimals: int | None = None,
        name: str | None = None,
        bounds: tuple[float, float] | None = None,
    ) -> None:
        has_proba = hasattr(estimator, "predict_proba")
        if not has_proba and output is not OutputKind.LABEL:
            raise UsageError(
                f"{type(estimator).__name__} has no predict_proba; it can only expose labels",
                hint="use output=OutputKind.LABEL",
            )
        classes = getattr(estimator, "classes_", None)
        n_features = getattr(estimator, "n_features_in_", None)
        fn = estimator.predict_proba if has_proba else estimator.predict
        super().__init__(
            fn,
            output=output,
            top_k=top_k,
            decimals=decimals,
            name=name or type(estimator).__name__,
            n_classes=None if classes is None else len(classes),
            input_shape=None if n_features is None else (int(n_features),),
            bounds=bounds,
            classes=None if classes is None else tuple(str(c) for c in classes),
        )
        self.estimator = estimator
        self._classes = classes

    def _scores(self, inputs: npt.NDArray[Any]) -> npt.NDArray[Any]:
        out = np.asarray(self.fn(inputs))
        if out.ndim == 1 and self._classes is not None:
            # predict() returns class values; the protocol speaks class indices.
            return np.searchsorted(np.asarray(self._classes), out)
        return out
