"""The in-process adapter: guard any predict callable inside the same Python process.

`guarded = wrap(guard, model.predict_proba)` returns a callable that takes an
array (and the caller's API key or an already-authenticated principal) and
returns the guard's `Prediction`, or raises `GuardDenied` carrying the
refusal (status, machine-readable reason, message, headers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.guard.core import Guard
from bastion.guard.request import Deny, Prediction, Principal, Request

__all__ = ["GuardDenied", "GuardedModel", "wrap"]


class GuardDenied(Exception):
    def __init__(self, deny: Deny) -> None:
        super().__init__(f"{deny.status} {deny.reason}: {deny.message}")
        self.deny = deny


class GuardedModel:
    def __init__(self, guard: Guard, predict: Callable[[npt.NDArray[Any]], Any]) -> None:
        self.guard = guard
        self.predict = predict
        spec = guard.config.model
        self.input_name = spec.inputs[0].name if spec.inputs else "input-0"
        self.classes = tuple(spec.classes) if spec.classes else None

    def _model(self, request: Request) -> Prediction:
        out = self.predict(request.inputs[self.input_name])
        if isinstance(out, Prediction):
            return out
        arr = np.asarray(out)
        if arr.ndim == 2:
            return Prediction.from_scores(arr, self.classes)
        return Prediction(arr.astype(np.int64).reshape(-1), classes=self.classes)

    def __call__(
        self,
        inputs: npt.ArrayLike,
        *,
        api_key: str | None = None,
        principal: Principal | None = None,
    ) -> Prediction:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        arr = np.asarray(inputs)
        request = Request(
            {self.input_name: arr}, headers=headers, principal=principal, size_bytes=arr.nbytes
        )
        outcome = self.guard.handle(request, self._model)
        if outcome.prediction is None:
            assert outcome.deny is not None
            raise GuardDenied(outcome.deny)
        return outcome.prediction


def wrap(guard: Guard, predict: Callable[[npt.NDArray[Any]], Any]) -> GuardedModel:
    return GuardedModel(guard, predict)
