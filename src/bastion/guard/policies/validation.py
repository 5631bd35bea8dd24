"""Input validation against the model's declared inputs: names, shapes, dtypes, ranges, size.

Validation cannot tell an adversarial input from a benign one (it is well
formed by construction); it closes the conventional holes around the model:
oversized payloads, NaN/inf that crash or skew pre-processing, out-of-range
values, wrong shapes that reach code paths nobody tested.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field

from bastion.guard.config import InputSpec
from bastion.guard.policy import GuardEnv, PolicyBase, PolicyOptions
from bastion.guard.request import Allow, Deny, Request, Transform, Verdict

__all__ = ["InputValidation"]


def _invalid(name: str, problem: str, message: str) -> Deny:
    return Deny(422, "invalid_input", message, body={"input": name, "problem": problem})


class InputValidation(PolicyBase):
    name = "input_validation"

    class Options(PolicyOptions):
        max_bytes: int = Field(default=1 << 20, gt=0)
        max_rows: int = Field(default=1024, gt=0)
        allow_unknown_inputs: bool = False

    def __init__(self, options: Options, env: GuardEnv) -> None:
        self.options = options
        self.specs = {s.name: s for s in env.config.model.inputs}
        self.dtypes = {s.name: np.dtype(s.dtype) for s in env.config.model.inputs}

    def on_request(self, request: Request) -> Verdict:
        o = self.options
        if request.size_bytes > o.max_bytes:
            return Deny(
                413,
                "payload_too_large",
                f"request body of {request.size_bytes} bytes exceeds {o.max_bytes}",
            )
        if request.rows > o.max_rows:
            return Deny(
                413,
                "too_many_rows",
                f"batch of {request.rows} rows exceeds the limit of {o.max_rows}",
            )
        if not request.inputs:
            return _invalid("", "missing", "the request carries no inputs")
        for name in self.specs:
            if name not in request.inputs:
                return _invalid(name, "missing", f"input {name!r} is missing")
        cast: dict[str, npt.NDArray[Any]] = {}
        for name, arr in request.inputs.items():
            spec = self.specs.get(name)
            if spec is None:
                if self.specs and not o.allow_unknown_inputs:
                    known = ", ".join(self.specs)
                    return _invalid(name, "unknown", f"unknown input {name!r} (expected: {known})")
                problem = _check_values(name, arr, None)
            else:
                problem = _check(name, arr, spec, self.dtypes[name])
                if problem is None and arr.dtype != self.dtypes[name]:
                    cast[name] = arr.astype(self.dtypes[name])
            if problem is not None:
                return problem
        if cast:
            return Transform(request=replace(request, inputs={**request.inputs, **cast}))
        return Allow()


_SMALL = 256  # up to this many values, Python's min/max beat numpy's per-call overhead
_CASTABLE: dict[tuple[np.dtype[Any], np.dtype[Any]], bool] = {}


def _castable(have: np.dtype[Any], want: np.dtype[Any]) -> bool:
    key = (have, want)
    known = _CASTABLE.get(key)
    if known is None:
        known = _CASTABLE[key] = bool(np.can_cast(have, want, "same_kind"))
    return known


def _bounds(arr: npt.NDArray[Any]) -> tuple[float, float]:
    """The smallest and largest value; NaN when the array holds a NaN (as numpy's min/max)."""
    if arr.size <= _SMALL:
        vals = arr.ravel().tolist()
        # a finite sum means no NaN or infinity (and no overflow): Python's min/max are exact;
        # otherwise let numpy decide, whose NaN handling does not depend on the order
        if arr.dtype.kind != "f" or math.isfinite(sum(vals)):
            return float(min(vals)), float(max(vals))
    return float(np.minimum.reduce(arr, axis=None)), float(np.maximum.reduce(arr, axis=None))


def _check(name: str, arr: npt.NDArray[Any], spec: InputSpec, dtype: np.dtype[Any]) -> Deny | None:
    shape = spec.shape
    if arr.ndim != len(shape) or any(
        want != -1 and got != want for want, got in zip(shape, arr.shape, strict=True)
    ):
        want_s = "[" + ", ".join("*" if d == -1 else str(d) for d in shape) + "]"
        return _invalid(
            name, "shape", f"input {name!r} has shape {list(arr.shape)}, expected {want_s}"
        )
    if arr.dtype.kind not in "biuf" or not _castable(arr.dtype, dtype):
        return _invalid(name, "dtype", f"input {name!r} has dtype {arr.dtype}, expected {dtype}")
    return _check_values(name, arr, spec)


def _check_values(name: str, arr: npt.NDArray[Any], spec: InputSpec | None) -> Deny | None:
    if arr.dtype.kind not in "biuf":
        return _invalid(name, "dtype", f"input {name!r} is not numeric ({arr.dtype})")
    if arr.size == 0:
        return _invalid(name, "shape", f"input {name!r} is empty")
    lo, hi = _bounds(arr)  # NaN/inf show up here too
    if arr.dtype.kind == "f" and not (spec and spec.allow_non_finite):
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return _invalid(name, "non_finite", f"input {name!r} contains NaN or infinity")
    elif math.isnan(lo) or math.isnan(hi):
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if spec is not None:
        if spec.min is not None and lo < spec.min:
            return _invalid(
                name, "range", f"input {name!r} has a value {lo} below the minimum {spec.min}"
            )
        if spec.max is not None and hi > spec.max:
            return _invalid(
                name, "range", f"input {name!r} has a value {hi} above the maximum {spec.max}"
            )
    return None
