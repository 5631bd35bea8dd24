"""Open Inference Protocol v2 and plain JSON, to and from the guard's `Request`/`Prediction`.

Parsing failures raise `MalformedRequest`, which adapters turn into a 400 JSON
answer. Only what the guard understands goes back to the client — the label
and, when allowed, (top-k) scores; other upstream outputs are dropped rather
than leaked past the output policy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.guard.config import ModelSpec
from bastion.guard.request import Prediction, Request

__all__ = ["Codec", "MalformedRequest", "codec_for"]

_OIP_DTYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "data"})
_SMALL = 256  # score matrices up to this size are ranked in plain Python


class MalformedRequest(ValueError):
    """The body cannot be read as the configured protocol; answered with 400."""


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        # json recurses per nesting level; a hostile body must not become a 500.
        raise MalformedRequest("body nests too deeply to be a model input") from None


def _array(data: Any, dtype: Any, shape: Any, name: str) -> npt.NDArray[Any]:
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow → inf, caught later
            arr = np.asarray(data, dtype=dtype)
        if shape is not None:
            arr = arr.reshape([int(d) for d in shape])
    except (ValueError, TypeError, OverflowError) as exc:
        raise MalformedRequest(f"input {name!r}: {exc}") from None
    return arr


# one encoder for every answer: `json.dumps` with options builds a new one per call
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _dumps(doc: Any) -> bytes:
    return _ENCODER.encode(doc).encode()


class Codec:
    def __init__(self, model: ModelSpec) -> None:
        self.model = model
        self.input_name = model.inputs[0].name if model.inputs else "input-0"
        self.classes = tuple(model.classes) if model.classes else None

    # --- requests -----------------------------------------------------------
    def decode_request(self, body: bytes, headers: Mapping[str, str]) -> Request:
        raise NotImplementedError

    def encode_request(self, request: Request) -> bytes:
        raise NotImplementedError

    # --- responses ----------------------------------------------------------
    def decode_response(self, body: bytes) -> Prediction:
        raise NotImplementedError

    def encode_response(self, request: Request, pred: Prediction) -> bytes:
        raise NotImplementedError

    def _classes(self) -> tuple[str, ...] | None:
        return self.classes

    def _prediction(self, labels: Any, scores: Any) -> Prediction:
        try:
            if scores is not None:
                s = np.asarray(scores, dtype=np.float64)
                if s.ndim != 2:
                    if s.ndim == 0:
                        raise ValueError("the scores are a single number, not one row per input")
                    s = s.reshape(s.shape[0], -1)
                lab = (
                    s.argmax(axis=1).astype(np.int64)
                    if labels is None
                    else np.asarray(labels, dtype=np.int64).reshape(-1)
                )
                return Prediction(lab, s, classes=self._classes())
            if labels is None:
                raise ValueError("the model's answer has neither labels nor scores")
            return Prediction(
                np.asarray(labels, dtype=np.int64).reshape(-1), classes=self._classes()
            )
        except (ValueError, TypeError) as exc:
            raise ValueError(f"cannot read the model's answer: {exc}") from None

    @staticmethod
    def _top_k(pred: Prediction) -> tuple[list[list[int]], list[list[float]]]:
        """The k best (class, score) pairs per row; the masked-out (NaN) classes rank last."""
        s, k = pred.scores, pred.top_k
        assert s is not None and k is not None
        if s.size <= _SMALL:  # a few rows: plain Python beats numpy's per-call overhead
            rows = s.tolist()
            order: list[list[int]] = []
            for row in rows:
                kept = [j for j, v in enumerate(row) if v == v]  # NaN marks a removed class
                if k == 1:
                    best = [max(kept, key=row.__getitem__)] if kept else [0]
                else:  # stable, like the argsort below: ties keep the class order
                    best = sorted(kept, key=row.__getitem__, reverse=True)
                    best = (best + [j for j in range(len(row)) if j not in kept])[:k]
                order.append(best)
            return order, [[r[j] for j in b] for r, b in zip(rows, order, strict=True)]
        ranked = np.where(np.isnan(s), -np.inf, s)
        if k == 1:
            top = ranked.argmax(axis=1).reshape(-1, 1)
        else:
            top = np.argsort(-ranked, axis=1, kind="stable")[:, :k]
        vals = s[np.arange(s.shape[0]).reshape(-1, 1), top]
        return top.tolist(), vals.tolist()


class OipCodec(Codec):
    def decode_request(self, body: bytes, headers: Mapping[str, str]) -> Request:
        doc = _loads(body)
        if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
            raise MalformedRequest("an OIP v2 request needs an 'inputs' list")
        inputs: dict[str, npt.NDArray[Any]] = {}
        for i, t in enumerate(doc["inputs"]):
            if not isinstance(t, dict) or not t.keys() >= _TENSOR_KEYS:
                raise MalformedRequest(f"inputs[{i}] needs name, shape, datatype and data")
            dtype = _OIP_DTYPES.get(str(t["datatype"]))
            if dtype is None:
                raise MalformedRequest(f"inputs[{i}]: unsupported datatype {t['datatype']!r}")
            inputs[str(t["name"])] = _array(t["data"], dtype, t["shape"], str(t["name"]))
        meta = {"oip_id": doc["id"]} if isinstance(doc.get("id"), str) else {}
        return Request(inputs, headers=headers, protocol="oip", size_bytes=len(body), metadata=meta)

    def decode_response(self, body: bytes) -> Prediction:
        doc = json.loads(body)
        outs = {o.get("name"): o for o in doc.get("outputs", []) if isinstance(o, dict)}
        lab, sc = outs.get(self.model.label_output), outs.get(self.model.scores_output)
        if sc is None and lab is None and len(outs) == 1:
            sc = next(iter(outs.values()))
        scores = (
            np.asarray(sc["data"], dtype=np.float64).reshape(sc["shape"])
            if sc is not None
            else None
        )
        return self._prediction(lab["data"] if lab is not None else None, scores)

    def encode_response(self, request: Request, pred: Prediction) -> bytes:
        n = len(pred.labels)
        outputs: list[dict[str, Any]] = [
            {
                "name": self.model.label_output,
                "shape": [n],
                "datatype": "INT64",
                "data": pred.labels.tolist(),
            }
        ]
        if pred.scores is not None and pred.top_k is not None:
            idx, vals = self._top_k(pred)
            k = pred.top_k
            outputs.append(
                {
                    "name": "top_k_classes",
                    "shape": [n, k],
                    "datatype": "INT64",
                    "data": [v for row in idx for v in row],
                }
            )
            outputs.append(
                {
                    "name": "top_k_scores",
                    "shape": [n, k],
                    "datatype": "FP64",
                    "data": [v for row in vals for v in row],
                }
            )
        elif pred.scores is not None:
            outputs.append(
                {
                    "name": self.model.scores_output,
                    "shape": list(pred.scores.shape),
                    "datatype": "FP64",
                    "data": pred.scores.ravel().tolist(),
                }
            )
        doc: dict[str, Any] = {"model_name": self.model.name, "outputs": outputs}
        if self.model.version:
            doc["model_version"] = self.model.version
        if "oip_id" in request.metadata:
            doc["id"] = request.metadata["oip_id"]
        return _dumps(doc)


class JsonCodec(Codec):
    """`{"instances": [[...], ...]}` (or `inputs`) in; `{label: [...], scores: [[...]]}` out."""

    def decode_request(self, body: bytes, headers: Mapping[str, str]) -> Request:
        doc = _loads(body)
        if not isinstance(doc, dict):
            raise MalformedRequest("the body must be a JSON object with 'instances'")
        data = doc.get("instances", doc.get("inputs"))
        if data is None:
            raise MalformedRequest("the body needs an 'instances' (or 'inputs') list")
        if isinstance(data, dict):
            inputs = {str(k): _array(v, None, None, str(k)) for k, v in data.items()}
        else:
            inputs = {self.input_name: _array(data, None, None, self.input_name)}
        for name, arr in inputs.items():
            if arr.dtype.kind not in "biuf":
                raise MalformedRequest(f"input {name!r} is ragged or not numeric")
        return Request(inputs, headers=headers, protocol="json", size_bytes=len(body))

    def decode_response(self, body: bytes) -> Prediction:
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise ValueError("the model's answer is not a JSON object")
        return self._prediction(doc.get(self.model.label_output), doc.get(self.model.scores_output))

    def encode_response(self, request: Request, pred: Prediction) -> bytes:
        doc: dict[str, Any] = {self.model.label_output: pred.labels.tolist()}
        if self.model.classes:
            doc["classes"] = list(self.model.classes)
        if pred.scores is not None and pred.top_k is not None:
            idx, vals = self._top_k(pred)
            doc["top_k"] = [
                [{"class": c, "score": s} for c, s in zip(r1, r2, strict=True)]
                for r1, r2 in zip(idx, vals, strict=True)
            ]
        elif pred.scores is not None:
            doc[self.model.scores_output] = pred.scores.tolist()
        return _dumps(doc)


def codec_for(model: ModelSpec) -> Codec:
    return OipCodec(model) if model.protocol == "oip" else JsonCodec(model)
