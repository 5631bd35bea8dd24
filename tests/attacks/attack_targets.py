"""Test targets for the attack table: the same real model in-process and over loopback HTTP.

Over HTTP it is served twice: by the Open Inference Protocol v2 and by a plain
JSON API (`{"inputs": rows}` in, `{"predictions": [...]}` out), so every attack
is shown to work through both dialects.

`Counted` gives the in-process truth count (rows the model really evaluated);
for HTTP the truth is the server's own count of inputs it answered. Both are
compared with the oracle's and the ledger's counts. `ScoresForbidden` wraps any
target so that reading the scores of an answer fails the test: label-only
attacks must never look.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from bastion.target import (
    OutputKind,
    QueryResult,
    SklearnTarget,
    Target,
    TargetInfo,
    json_target,
    oip_target,
)
from bastion.testing import ServerConfig, ServerState, model_app, serve_in_background

TARGETS = ["in-process", "http", "http-json"]


class Counted:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.rows = 0

    def info(self) -> TargetInfo:
        return self.target.info()

    def query(self, inputs: np.ndarray) -> QueryResult:
        self.rows += len(inputs)
        return self.target.query(inputs)

    def close(self) -> None:
        self.target.close()


class _NoScores(QueryResult):
    @property  # type: ignore[override]
    def scores(self) -> Any:
        raise AssertionError("a label-only attack read the scores of an answer")

    @scores.setter
    def scores(self, value: Any) -> None:
        pass


class ScoresForbidden:
    """Answers whose `scores` raise when read; the target reports label-only access."""

    def __init__(self, target: Target) -> None:
        self.target = target
        info = target.info()
        self._info = TargetInfo(
            name=info.name,
            output=OutputKind.LABEL,
            n_classes=info.n_classes,
            input_shape=info.input_shape,
            dtype=info.dtype,
            bounds=info.bounds,
        )

    def info(self) -> TargetInfo:
        return self._info

    def query(self, inputs: np.ndarray) -> QueryResult:
        r = self.target.query(inputs)
        return _NoScores(r.labels, None, r.latency_s, r.status, (), r.bytes_sent, r.bytes_received)

    def close(self) -> None:
        self.target.close()


@dataclass
class Deployed:
    """One model behind one access: the target to attack and its truth count."""

    target: Target
    truth: Callable[[], int]


class Deployments:
    """Serves each (model, output) once per session, on loopback, and stops all at the end."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._urls: dict[tuple[int, str, str], tuple[str, ServerState]] = {}

    def close(self) -> None:
        self._stack.close()

    def __call__(self, where: str, model: Any, output: OutputKind) -> Deployed:
        if where == "in-process":
            counted = Counted(SklearnTarget(model, output=OutputKind.SCORES))
            base: Target = counted
            truth = lambda: counted.rows  # noqa: E731
        else:
            served = "label" if output is OutputKind.LABEL else "scores"
            protocol: Literal["oip", "json"] = "json" if where == "http-json" else "oip"
            key = (id(model), served, protocol)
            if key not in self._urls:
                state = ServerState()
                config = ServerConfig.vulnerable(
                    protocol, output=served, model_name="model", bounds=(-1e6, 1e6)
                )
                app = model_app(model, config, state)
                self._urls[key] = (self._stack.enter_context(serve_in_background(app)), state)
            url, state = self._urls[key]
            # plain JSON: {"inputs": rows} -> {"predictions": [{"label", "scores"}, ...]}
            base = json_target(f"{url}/predict") if protocol == "json" else oip_target(url, "model")
            self._stack.callback(base.close)
            start = state.inputs
            truth = lambda: state.inputs - start  # noqa: E731
        target = ScoresForbidden(base) if output is OutputKind.LABEL else base
        return Deployed(target, truth)


def deployments() -> Iterator[Deployments]:
    d = Deployments()
    try:
        yield d
    finally:
        d.close()


def torch_layout(mlp: Any, dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """An MLPClassifier's weights named and laid out as torch's nn.Sequential saves them."""
    out = {}
    for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_, strict=True)):
        out[f"{2 * i}.weight"] = np.ascontiguousarray(w.T, dtype=dtype)
        out[f"{2 * i}.bias"] = np.asarray(b, dtype=dtype)
    return out
