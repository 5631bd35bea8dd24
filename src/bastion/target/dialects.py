"""How inputs and answers are spelled on the wire: Open Inference Protocol v2 and plain JSON.

A dialect turns a numpy batch into a request body and a response body back
into labels and scores — and nothing else, so probes can reuse it to craft
valid and deliberately invalid requests against the same endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import TargetError

__all__ = ["JsonDialect", "JsonMapping", "LabelIndex", "OipDialect", "extract"]

_FLOAT_TYPES = {"FP16", "FP32", "FP64", "BF16"}
_INT_TYPES = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "BOOL"}
_SCORE_NAMES = {"probabilities", "probability", "proba", "scores", "score", "logits"}
_SCORE_NAMES |= {"predict_proba", "output_probability"}
_LABEL_NAMES = {"label", "labels", "predict", "prediction", "class", "output_label"}


class LabelIndex:
    """Class names or values as the service spells them → stable class indices."""

    def __init__(self, classes: tuple[str, ...] | None = None) -> None:
        self._index: dict[str, int] = {c: i for i, c in enumerate(classes or ())}
        self._fixed = classes is not None

    def __call__(self, label: Any) -> int:
        if isinstance(label, bool):
            return int(label)
        if isinstance(label, int) and not self._fixed:
            return label
        key = str(label)
        if key not in self._index:
            if self._fixed:
                raise TargetError(f"the endpoint returned unknown class {label!r}")
            if key.lstrip("-").isdigit():
                return int(key)
            self._index[key] = len(self._index)
        return self._index[key]


def extract(doc: Any, path: str) -> Any:
    """Follow `a.b[].c` through a JSON document; `[]` maps the rest over a list."""
    head, sep, rest = path.partition("[]")
    node = doc
    for key in filter(None, head.split(".")):
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            raise TargetError(f"response has no field {path!r} (stuck at {key!r})")
    if not sep:
        return node
    if not isinstance(node, list):
        raise TargetError(f"response field {head!r} is not a list (mapping {path!r})")
    rest = rest.lstrip(".")
    return [extract(item, rest) if rest else item for item in node]


def _scores_matrix(rows: Any, n: int, labels: LabelIndex) -> npt.NDArray[np.float64]:
    """Full score rows, or {class: score} dicts (top-k: the classes not returned are NaN)."""
    if not isinstance(rows, list) or len(rows) != n:
        raise TargetError(f"expected {n} score rows, got {type(rows).__name__}")
    if all(isinstance(r, dict) for r in rows):
        pairs = [[(labels(k), float(v)) for k, v in r.items()] for r in rows]
        width = 1 + max((c for row in pairs for c, _ in row), default=0)
        out = np.full((n, width), np.nan)
        for i, row in enumerate(pairs):
            for c, v in row:
                out[i, c] = v
        return out
    try:
        return np.asarray(rows, dtype=np.float64).reshape(n, -1)
    except (TypeError, ValueError) as exc:
        raise TargetError(f"cannot read scores from the response: {exc}") from None


@dataclass
class OipDialect:
    """KServe/Triton/MLServer's v2 protocol: `/v2/models/{name}[/versions/{v}]/infer`."""

    base_url: str
    model_name: str
    version: str | None = None
    input_name: str = "input-0"
    datatype: str = "FP32"
    input_shape: tuple[int, ...] | None = None
    label_output: str | None = None
    scores_output: str | None = None
    classes: tuple[str, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    name = "oip"

    @property
    def model_url(self) -> str:
        url = f"{self.base_url.rstrip('/')}/v2/models/{self.model_name}"
        return f"{url}/versions/{self.version}" if self.version else url

    @property
    def infer_url(self) -> str:
        return f"{self.model_url}/infer"

    def apply_metadata(self, meta: dict[str, Any]) -> None:
        """Take input name, datatype and shape from the model metadata endpoint."""
        self.metadata = meta
        inputs = meta.get("inputs") or []
        if inputs and isinstance(inputs[0], dict):
            first = inputs[0]
            self.input_name = str(first.get("name", self.input_name))
            self.datatype = str(first.get("datatype", self.datatype)).upper()
            shape = [int(s) for s in first.get("shape", []) if isinstance(s, int)]
            if len(shape) >= 2:
                self.input_shape = tuple(shape[1:])
        for out in meta.get("outputs") or []:
            name = str(out.get("name", "")) if isinstance(out, dict) else ""
            if name.lower() in _SCORE_NAMES and self.scores_output is None:
                self.scores_output = name
            elif name.lower() in _LABEL_NAMES and self.label_output is None:
                self.label_output = name

    def encode(self, inputs: npt.NDArray[Any]) -> dict[str, Any]:
        batch = np.asarray(inputs)
        cast = int if self.datatype in _INT_TYPES else float
        return {
            "inputs": [
                {
                    "name": self.input_name,
                    "shape": list(batch.shape),
                    "datatype": self.datatype,
                    "data": [cast(v) for v in batch.reshape(-1).tolist()],
                }
            ]
        }

    def decode(
        self, body: Any, n: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64] | None]:
        outputs = body.get("outputs") if isinstance(body, dict) else None
        if not isinstance(outputs, list) or not outputs:
            raise TargetError("OIP response has no 'outputs' list")
        by_name = {str(o.get("name")): o for o in outputs if isinstance(o, dict)}
        scores_out = by_name.get(self.scores_output or "") or next(
            (o for o in by_name.values() if _is_score_output(o)), None
        )
        label_out = by_name.get(self.label_output or "") or next(
            (o for o in by_name.values() if o is not scores_out and not _is_score_output(o)), None
        )
        index = LabelIndex(self.classes)
        scores = None
        if scores_out is not None:
            data = scores_out.get("data")
            if isinstance(data, list) and data and not isinstance(data[0], list | dict) and n:
                # v2 tensors travel flat (row-major); the shape says how to fold them.
                width, rem = divmod(len(data), n)
                if rem:
                    raise TargetError(f"OIP scores output has {len(data)} values for {n} inputs")
                data = [data[i * width : (i + 1) * width] for i in range(n)]
            scores = _scores_matrix(data, n, index) if n else np.zeros((0, 0))
        if label_out is not None:
            data = label_out.get("data")
            if not isinstance(data, list) or len(data) != n:
                raise TargetError(f"OIP label output has {data!r:.60}, expected {n} labels")
            labels = np.asarray([index(v) for v in data], dtype=np.int64)
        elif scores is not None:
            labels = np.nan_to_num(scores, nan=-np.inf).argmax(axis=1).astype(np.int64)
        else:
            raise TargetError("OIP response has neither a label nor a scores output")
        return labels, scores


def _is_score_output(out: dict[str, Any]) -> bool:
    name = str(out.get("name", "")).lower()
    shape = out.get("shape") or []
    dtype = str(out.get("datatype", "")).upper()
    return name in _SCORE_NAMES or (dtype in _FLOAT_TYPES and len(shape) >= 2)


@dataclass(frozen=True)
class JsonMapping:
    """Where a plain-JSON endpoint takes its batch and puts its answers.

    `input_field` is a dotted key for the list of input rows; `label_field` and
    `scores_field` are paths like `predictions[].label` (`[]` maps over a list);
    `template` holds constant fields to send along (e.g. a model id).
    """

    input_field: str = "inputs"
    label_field: str | None = "predictions[].label"
    scores_field: str | None = "predictions[].scores"
    template: tuple[tuple[str, Any], ...] = ()


@dataclass
class JsonDialect:
    url: str
    mapping: JsonMapping = field(default_factory=JsonMapping)
    classes: tuple[str, ...] | None = None
    input_shape: tuple[int, ...] | None = None

    name = "json"

    @property
    def infer_url(self) -> str:
        return self.url

    def encode(self, inputs: npt.NDArray[Any]) -> dict[str, Any]:
        body: dict[str, Any] = dict(self.mapping.template)
        node = body
        *parents, leaf = self.mapping.input_field.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = np.asarray(inputs).tolist()
        return body

    def decode(
        self, body: Any, n: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64] | None]:
        index = LabelIndex(self.classes)
        scores = None
        if self.mapping.scores_field:
            try:
                rows = extract(body, self.mapping.scores_field)
            except TargetError:
                rows = None  # a hardened deployment may drop scores; labels still count
            if rows is not None:
                scores = _scores_matrix(rows, n, index)
        if self.mapping.label_field:
            try:
                values = extract(body, self.mapping.label_field)
            except TargetError:
                if scores is None:
                    raise
                values = None
            if values is not None:
                if not isinstance(values, list) or len(values) != n:
                    raise TargetError(f"expected {n} labels at {self.mapping.label_field!r}")
                return np.asarray([index(v) for v in values], dtype=np.int64), scores
        if scores is None:
            raise TargetError("the mapping names neither a label nor a scores field")
        return np.nan_to_num(scores, nan=-np.inf).argmax(axis=1).astype(np.int64), scores
