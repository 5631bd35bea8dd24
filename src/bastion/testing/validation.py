"""How the hardened test server checks a request, and how both servers read a batch.

Kept apart from the app so the checks read as a list: size, content type, JSON
without NaN/Infinity, structure, shape, dtype, finiteness and range — each
refused with a JSON 4xx that says what was wrong.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["Rejected", "error_response", "oip_rows", "strict_body", "strict_rows"]


def error_response(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Rejected(Exception):
    """Raised inside a handler to answer with a prepared error response."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _no_constants(token: str) -> Any:
    raise ValueError(f"{token} is not allowed")


def strict_body(raw: bytes, request: Request, max_bytes: int) -> Any:
    if len(raw) > max_bytes:
        raise Rejected(error_response(413, f"body larger than {max_bytes} bytes"))
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype != "application/json":
        raise Rejected(error_response(415, "content type must be application/json"))
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Rejected(error_response(400, f"invalid JSON body: {str(exc)[:80]}")) from None


def strict_rows(
    rows: Any, n_features: int, max_batch: int, bounds: tuple[float, float]
) -> npt.NDArray[np.float64]:
    if not isinstance(rows, list) or not 1 <= len(rows) <= max_batch:
        raise Rejected(error_response(400, f"inputs must be a list of 1..{max_batch} rows"))
    if not all(
        isinstance(r, list)
        and len(r) == n_features
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in r)
        for r in rows
    ):
        raise Rejected(error_response(400, f"each input row must be {n_features} numbers"))
    x = np.asarray(rows, dtype=np.float64)
    lo, hi = bounds
    if not np.isfinite(x).all() or (x < lo).any() or (x > hi).any():
        raise Rejected(error_response(400, f"input values must be finite and within [{lo}, {hi}]"))
    return x


def oip_rows(doc: Any, n_features: int, strict: bool) -> Any:
    """The rows of a v2 request's first input tensor; strict refuses any other shape."""
    if not strict:  # the careless server trusts whatever arrives
        tensor = doc["inputs"][0]
        return np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"]).tolist()
    try:
        tensor = doc["inputs"][0]
        shape, data = tensor["shape"], tensor["data"]
        if not (isinstance(shape, list) and len(shape) == 2 and shape[1] == n_features):
            raise ValueError
        if not isinstance(data, list) or len(data) != shape[0] * shape[1]:
            raise ValueError
    except (KeyError, IndexError, TypeError, ValueError):
        raise Rejected(
            error_response(400, f"expected one input tensor of shape [n, {n_features}]")
        ) from None
    return [data[i * n_features : (i + 1) * n_features] for i in range(shape[0])]
