"""Pure ASGI middleware: the guard inside an existing FastAPI/Starlette/KServe/MLServer app.

Prediction requests (OIP `/v2/models/*/infer`, or the configured JSON paths)
are read, taken through the guard, replayed to the wrapped app, and its answer
is passed through the response policies before it leaves. Every other path
goes straight to the app; the guard's own endpoints (health, review, metrics)
are served in front of it.
"""

from __future__ import annotations

import re
import time
from collections.abc import MutableMapping
from typing import Any

from bastion.guard.adapters.codec import codec_for
from bastion.guard.adapters.exchange import (
    ModelCallError,
    Receive,
    Scope,
    Send,
    guarded_exchange,
    headers_of,
    receive_body,
    send_reply,
    serve_guard_endpoint,
)
from bastion.guard.core import Guard
from bastion.guard.request import Prediction, Request

__all__ = ["GuardMiddleware"]

_OIP_INFER = re.compile(r"^/v2/models/([^/]+)(?:/versions/[^/]+)?/infer$")
ASGIApp = Any


class GuardMiddleware:
    def __init__(self, app: ASGIApp, guard: Guard, *, serve_endpoints: bool = True) -> None:
        self.app = app
        self.guard = guard
        self.codec = codec_for(guard.config.model)
        self.spec = guard.config.proxy
        self.serve_endpoints = serve_endpoints

    def _is_predict(self, path: str) -> str | None:
        if self.codec.model.protocol == "oip":
            m = _OIP_INFER.match(path)
            return m.group(1) if m else None
        return "" if path in self.spec.predict_paths else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.serve_endpoints and await serve_guard_endpoint(
            self.guard, scope, receive, send, _always_ready
        ):
            return
        model_name = self._is_predict(scope["path"])
        if model_name is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = headers_of(scope)
        body = await receive_body(receive, send, self.spec, headers)
        if body is None:
            return

        async def call(request: Request) -> tuple[Prediction, float]:
            return await self._call_app(scope, body)

        reply = await guarded_exchange(self.guard, self.codec, body, headers, model_name, call)
        await send_reply(send, reply)

    async def _call_app(self, scope: Scope, body: bytes) -> tuple[Prediction, float]:
        sent = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 500
        chunks: list[bytes] = []

        async def capture(msg: MutableMapping[str, Any]) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = int(msg["status"])
            elif msg["type"] == "http.response.body":
                chunks.append(msg.get("body", b""))

        t = time.perf_counter()
        try:
            await self.app(scope, replay, capture)
        except Exception as exc:
            raise ModelCallError(
                502, "model_error", f"the model app failed ({type(exc).__name__})"
            ) from None
        elapsed = time.perf_counter() - t
        if status >= 500:
            raise ModelCallError(502, "model_error", f"the model app answered {status}")
        if status >= 400:
            raise ModelCallError(status, "model_rejected", f"the model app answered {status}")
        try:
            return self.codec.decode_response(b"".join(chunks)), elapsed
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelCallError(
                502, "model_unreadable", f"the model app's answer could not be read: {exc}"
            ) from None


async def _always_ready(path: str = "") -> bool:
    return True
