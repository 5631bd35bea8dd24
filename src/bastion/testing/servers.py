"""Real model servers with planted flaws, for tests, examples and the demo.

One Starlette app serves a real scikit-learn classifier over the Open Inference
Protocol v2 or plain JSON. `ServerConfig.vulnerable()` behaves like a careless
deployment (no auth, no rate limit, raw scores with every decimal, tracebacks
on bad input, versions and paths in metadata); `ServerConfig.hardened()` like a
careful one (API key, rate limit with Retry-After, labels only, strict
validation with clean JSON 4xx errors, minimal metadata, randomised answers
near the decision boundary). Every request is counted, so a test can compare
the server's log with the query ledger. Needs the `serve` extra.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ServerConfig", "ServerState", "iris_model", "model_app"]

_LEAKY_HOST = "ml-worker-3.prod.internal"
_LEAKY_PATH = "/srv/models/iris/2024-05-01/model.pkl"


@dataclass(frozen=True)
class ServerConfig:
    protocol: Literal["oip", "json"] = "oip"
    model_name: str = "iris"
    api_key: str | None = None
    rate_limit: tuple[int, float] | None = None  # (requests, per seconds), per principal
    output: Literal["label", "scores"] = "scores"
    decimals: int | None = None  # None: every digit of the float
    strict: bool = False
    leak_errors: bool = True
    leaky_metadata: bool = True
    extra_fields: bool = True
    noise: float = 0.0  # std of Gaussian input noise: a randomised defence
    bounds: tuple[float, float] = (0.0, 10.0)
    max_body_bytes: int = 256 * 1024
    max_batch: int = 256

    @classmethod
    def vulnerable(cls, protocol: Literal["oip", "json"] = "oip", **kw: Any) -> ServerConfig:
        return cls(protocol=protocol, **kw)

    @classmethod
    def hardened(
        cls,
        protocol: Literal["oip", "json"] = "oip",
        api_key: str = "s3cret-test-key",
        **kw: Any,
    ) -> ServerConfig:
        settings: dict[str, Any] = {
            "api_key": api_key,
            "rate_limit": (30, 1.0),
            "output": "label",
            "strict": True,
            "leak_errors": False,
            "leaky_metadata": False,
            "extra_fields": False,
            "noise": 0.3,
        }
        settings.update(kw)
        return cls(protocol=protocol, **settings)


@dataclass
class ServerState:
    """What the server saw: every request, and every input it answered."""

    requests: int = 0
    inputs: int = 0
    log: list[list[Any]] = field(default_factory=list)  # [method, path, status]
    hosts: set[str] = field(default_factory=set)
    windows: dict[str, tuple[float, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.requests = 0
            self.inputs = 0
            self.log.clear()
            self.hosts.clear()
            self.windows.clear()


def iris_model() -> Any:
    """A real classifier on data shipped with scikit-learn (4 features, 3 classes)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=1000).fit(x, y)


class _Counter:
    """Pure ASGI middleware so rejected and malformed requests are counted too."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 0}

        async def spy(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        host = dict(scope.get("headers") or []).get(b"host", b"").decode()
        with self.state.lock:
            # Counted on arrival, so a client that has its answer sees the count.
            self.state.requests += 1
            self.state.hosts.add(host)
            entry = [scope["method"], scope["path"], 0]
            self.state.log.append(entry)
        try:
            await self.app(scope, receive, spy)  # type: ignore[arg-type]
        finally:
            entry[2] = status["code"]


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Rejected(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def model_app(model: Any, config: ServerConfig, state: ServerState | None = None) -> Starlette:
    """The served model; `app.state.bastion` is the ServerState tests read."""
    state = state or ServerState()
    rng = np.random.default_rng(0)
    import sklearn

    versions = {
        "python": sys.version.split()[0],
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }
    n_features = int(model.n_features_in_)
    n_classes = len(model.classes_)

    def principal(request: Request) -> str:
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ").strip() or request.headers.get("x-api-key", "")
        if config.api_key is not None and key != config.api_key:
            raise _Rejected(
                _error(401, "missing or invalid API key", **{"WWW-Authenticate": "Bearer"})
            )
        return key or (request.client.host if request.client else "anonymous")

    def throttle(who: str) -> None:
        if config.rate_limit is None:
            return
        limit, window = config.rate_limit
        now = time.monotonic()
        with state.lock:
            start, count = state.windows.get(who, (now, 0))
            if now - start >= window:
                start, count = now, 0
            count += 1
            state.windows[who] = (start, count)
        if count > limit:
            wait = max(1, math.ceil(window - (now - start)))
            raise _Rejected(_error(429, "rate limit exceeded", **{"Retry-After": str(wait)}))

    def strict_parse(raw: bytes, request: Request) -> Any:
        if len(raw) > config.max_body_bytes:
            raise _Rejected(_error(413, f"body larger than {config.max_body_bytes} bytes"))
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype != "application/json":
            raise _Rejected(_error(415, "content type must be application/json"))

        def no_constants(token: str) -> Any:
            raise ValueError(f"{token} is not allowed")

        try:
            return json.loads(raw.decode("utf-8"), parse_constant=no_constants)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise _Rejected(_error(400, f"invalid JSON body: {str(exc)[:80]}")) from None

    def strict_inputs(rows: Any) -> npt.NDArray[np.float64]:
        if not isinstance(rows, list) or not 1 <= len(rows) <= config.max_batch:
            raise _Rejected(_error(400, f"inputs must be a list of 1..{config.max_batch} rows"))
        if not all(
            isinstance(r, list)
            and len(r) == n_features
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in r)
            for r in rows
        ):
            raise _Rejected(_error(400, f"each input row must be {n_features} numbers"))
        x = np.asarray(rows, dtype=np.float64)
        lo, hi = config.bounds
        if not np.isfinite(x).all() or (x < lo).any() or (x > hi).any():
            raise _Rejected(_error(400, f"input values must be finite and within [{lo}, {hi}]"))
        return x

    def oip_rows(doc: Any) -> Any:
        if config.strict:
            try:
                tensor = doc["inputs"][0]
                shape, data = tensor["shape"], tensor["data"]
                if not (isinstance(shape, list) and len(shape) == 2 and shape[1] == n_features):
                    raise ValueError
                if not isinstance(data, list) or len(data) != shape[0] * shape[1]:
                    raise ValueError
            except (KeyError, IndexError, TypeError, ValueError):
                raise _Rejected(
                    _error(400, f"expected one input tensor of shape [n, {n_features}]")
                ) from None
            return [data[i * n_features : (i + 1) * n_features] for i in range(shape[0])]
        tensor = doc["inputs"][0]
        return np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"]).tolist()

    def predict(x: npt.NDArray[np.float64]) -> tuple[list[int], npt.NDArray[np.float64]]:
        if config.noise:
            x = x + rng.normal(0.0, config.noise, size=x.shape)
        proba = np.asarray(model.predict_proba(x), dtype=np.float64)
        if config.decimals is not None:
            proba = np.round(proba, config.decimals)
        return [int(v) for v in proba.argmax(axis=1)], proba

    def answer(labels: list[int], proba: npt.NDArray[np.float64], ms: float) -> dict[str, Any]:
        n = len(labels)
        scores = config.output == "scores"
        if config.protocol == "oip":
            outputs: list[dict[str, Any]] = [
                {"name": "label", "shape": [n], "datatype": "INT64", "data": labels}
            ]
            if scores:
                flat = proba.reshape(-1).tolist()
                outputs.append(
                    {
                        "name": "probabilities",
                        "shape": [n, n_classes],
                        "datatype": "FP64",
                        "data": flat,
                    }
                )
            body: dict[str, Any] = {"model_name": config.model_name, "outputs": outputs}
            if config.extra_fields:
                body["model_version"] = "1.4.2"
                body["id"] = f"req-{state.requests}"
                body["parameters"] = {"inference_ms": ms, "worker": _LEAKY_HOST}
            return body
        preds = [
            {"label": lab, **({"scores": row} if scores else {})}
            for lab, row in zip(labels, proba.tolist(), strict=True)
        ]
        body = {"predictions": preds}
        if config.extra_fields:
            body |= {"model_version": "1.4.2", "inference_ms": ms, "host": _LEAKY_HOST}
        return body

    async def infer(request: Request) -> Response:
        try:
            if config.protocol == "oip" and request.path_params["name"] != config.model_name:
                return _error(404, f"unknown model {request.path_params['name']!r}")
            throttle(principal(request))
            raw = await request.body()
            if config.strict:
                doc = strict_parse(raw, request)
                rows = (
                    oip_rows(doc)
                    if config.protocol == "oip"
                    else (doc.get("inputs") if isinstance(doc, dict) else None)
                )
                x = strict_inputs(rows)
            else:
                doc = json.loads(raw)
                rows = oip_rows(doc) if config.protocol == "oip" else doc["inputs"]
                x = np.asarray(rows, dtype=np.float64)
            t0 = time.perf_counter()
            labels, proba = predict(x)
            ms = (time.perf_counter() - t0) * 1000
            with state.lock:
                state.inputs += len(labels)
            return JSONResponse(answer(labels, proba, ms))
        except _Rejected as rejected:
            return rejected.response
        except Exception:
            if config.leak_errors:
                return PlainTextResponse(
                    traceback.format_exc(), status_code=500, headers=_leaky_headers(versions)
                )
            return _error(500, "internal error")

    def metadata_view(server_level: bool) -> Any:
        async def view(request: Request) -> Response:
            try:
                if not config.leaky_metadata:
                    principal(request)
            except _Rejected as rejected:
                return rejected.response
            if server_level:
                body: dict[str, Any] = {"name": "model-server", "version": "1", "extensions": []}
            else:
                outputs = [{"name": "label", "datatype": "INT64", "shape": [-1]}]
                if config.output == "scores":
                    outputs.append(
                        {"name": "probabilities", "datatype": "FP64", "shape": [-1, n_classes]}
                    )
                body = {
                    "name": config.model_name,
                    "versions": ["1"],
                    "platform": "sklearn",
                    "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, n_features]}],
                    "outputs": outputs,
                }
            if config.leaky_metadata:
                body["parameters"] = {
                    "artifact": _LEAKY_PATH,
                    "host": _LEAKY_HOST,
                    "versions": versions,
                    "training_rows": 150,
                }
            return JSONResponse(
                body, headers=_leaky_headers(versions) if config.leaky_metadata else {}
            )

        return view

    async def health(request: Request) -> Response:
        return JSONResponse({"live": True})

    if config.protocol == "oip":
        routes = [
            Route("/v2", metadata_view(True)),
            Route("/v2/health/live", health),
            Route("/v2/health/ready", health),
            Route("/v2/models/{name}", metadata_view(False)),
            Route("/v2/models/{name}/ready", health),
            Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        ]
    else:
        routes = [
            Route("/health", health),
            Route("/metadata", metadata_view(False)),
            Route("/predict", infer, methods=["POST"]),
        ]
    app = Starlette(routes=routes)
    app.state.bastion = state
    app.add_middleware(_Counter, state=state)
    return app


def _leaky_headers(versions: dict[str, str]) -> dict[str, str]:
    return {
        "X-Powered-By": f"Python/{versions['python']} scikit-learn/{versions['scikit-learn']}",
        "X-Backend-Host": _LEAKY_HOST,
    }
