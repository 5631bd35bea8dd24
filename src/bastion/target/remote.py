"""Targets behind HTTP: an Open Inference Protocol v2 or a plain JSON endpoint.

They answer exactly what the service returns — labels, top-k or scores at the
precision on the wire — and report bytes and latency so the ledger can count
what an attack costs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from bastion.errors import TargetError, UsageError
from bastion.target.base import OutputKind, QueryResult, TargetInfo
from bastion.target.dialects import JsonDialect, JsonMapping, OipDialect
from bastion.target.http import HttpClient, HttpOptions

__all__ = ["HttpTarget", "json_target", "observed_output", "oip_target"]

Dialect = OipDialect | JsonDialect


def observed_output(scores: npt.NDArray[np.float64] | None) -> OutputKind:
    """What a batch of answers reveals: NaN holes mean top-k, values off [0, 1] mean logits."""
    if scores is None or scores.size == 0:
        return OutputKind.LABEL
    if np.isnan(scores).any():
        return OutputKind.TOP_K
    if (scores < 0).any() or (scores > 1).any():
        return OutputKind.LOGITS
    return OutputKind.SCORES


class HttpTarget:
    """A model served over HTTP, spoken to in one dialect through one pooled client."""

    def __init__(
        self,
        dialect: Dialect,
        client: HttpClient | None = None,
        *,
        output: OutputKind | None = None,
        bounds: tuple[float, float] | None = None,
        name: str | None = None,
    ) -> None:
        split = urlsplit(dialect.infer_url)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise UsageError(
                f"not an http(s) URL: {dialect.infer_url!r}", hint="e.g. http://127.0.0.1:8080"
            )
        self.dialect = dialect
        self.client = client or HttpClient()
        self.declared_output = output
        self.bounds = bounds
        self.name = name or getattr(dialect, "model_name", None) or split.netloc
        self._observed: OutputKind | None = None
        self._metadata_read = False

    def close(self) -> None:
        self.client.close()

    def read_metadata(self) -> dict[str, Any]:
        """OIP only: input name, datatype and shape come from the metadata endpoint."""
        if not isinstance(self.dialect, OipDialect):
            return {}
        if not self._metadata_read:
            self._metadata_read = True
            exchange = self.client.send("GET", self.dialect.model_url)
            exchange.raise_for_status()
            meta = exchange.json()
            if not isinstance(meta, dict):
                raise TargetError(f"{self.dialect.model_url} metadata is not a JSON object")
            self.dialect.apply_metadata(meta)
        return self.dialect.metadata

    def info(self) -> TargetInfo:
        meta = self.read_metadata()
        if isinstance(self.dialect, OipDialect):
            scored = self.dialect.scores_output is not None
        else:
            scored = self.dialect.mapping.scores_field is not None
        hint = OutputKind.SCORES if scored else OutputKind.LABEL
        classes = self.dialect.classes
        return TargetInfo(
            name=self.name,
            output=self.declared_output or self._observed or hint,
            n_classes=None if classes is None else len(classes),
            input_shape=self.dialect.input_shape,
            dtype=getattr(self.dialect, "datatype", "FP32").lower().replace("fp", "float"),
            bounds=self.bounds,
            classes=classes,
            extra={"url": self.dialect.infer_url, "protocol": self.dialect.name, "metadata": meta},
        )

    def query(self, inputs: npt.NDArray[Any]) -> QueryResult:
        self.read_metadata()
        batch = np.asarray(inputs)
        n = int(batch.shape[0])
        exchange = self.client.send(
            "POST", self.dialect.infer_url, json_body=self.dialect.encode(batch)
        )
        exchange.raise_for_status()
        body = exchange.json()
        labels, scores = self.dialect.decode(body, n)
        self._observed = observed_output(scores)
        return QueryResult(
            labels=labels,
            scores=scores,
            latency_s=exchange.latency_s,
            status=exchange.status,
            raw=(body,),
            bytes_sent=exchange.bytes_sent,
            bytes_received=len(exchange.body),
        )


def oip_target(
    base_url: str,
    model_name: str,
    *,
    version: str | None = None,
    options: HttpOptions | None = None,
    output: OutputKind | None = None,
    classes: tuple[str, ...] | None = None,
    bounds: tuple[float, float] | None = None,
) -> HttpTarget:
    dialect = OipDialect(base_url, model_name, version=version, classes=classes)
    return HttpTarget(dialect, HttpClient(options), output=output, bounds=bounds)


def json_target(
    url: str,
    *,
    mapping: JsonMapping | None = None,
    options: HttpOptions | None = None,
    output: OutputKind | None = None,
    classes: tuple[str, ...] | None = None,
    input_shape: tuple[int, ...] | None = None,
    bounds: tuple[float, float] | None = None,
) -> HttpTarget:
    dialect = JsonDialect(url, mapping or JsonMapping(), classes=classes, input_shape=input_shape)
    return HttpTarget(dialect, HttpClient(options), output=output, bounds=bounds)
