"""The reverse proxy: `bastion guard serve --upstream URL` in front of any OIP v2 or JSON server.

A plain ASGI app (run by uvicorn) that reads a bounded body, takes it through
the guard, forwards the original bytes to the upstream with httpx (hop-by-hop
and credential headers stripped), and answers the guard's view of the result.
Upstream down → 502, too slow → 504, each a JSON error and an audit record.
"""

from __future__ import annotations

import re
import time

import httpx

from bastion.guard.adapters.codec import codec_for
from bastion.guard.adapters.exchange import (
    BodyTooLarge,
    ModelCallError,
    Receive,
    Scope,
    Send,
    guarded_exchange,
    headers_of,
    read_body,
    send_json,
    serve_guard_endpoint,
)
from bastion.guard.core import Guard
from bastion.guard.metrics import UPSTREAM_ERRORS
from bastion.guard.request import Prediction, Request

__all__ = ["GuardProxy"]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        # the guard consumed the caller's credentials; the model server never sees them
        "authorization",
        "x-api-key",
    }
)
_OIP_INFER = re.compile(r"^/v2/models/([^/]+)(?:/versions/[^/]+)?/infer$")
_OIP_HEALTH = frozenset({"/v2/health/live", "/v2/health/ready"})


def forward_headers(headers: dict[str, str], principal: str) -> dict[str, str]:
    drop = HOP_BY_HOP | {h.strip() for h in headers.get("connection", "").lower().split(",")}
    out = {k: v for k, v in headers.items() if k not in drop}
    out["x-bastion-principal"] = principal
    return out


class GuardProxy:
    def __init__(self, guard: Guard, upstream: str, *, client: httpx.AsyncClient | None = None):
        self.guard = guard
        self.upstream = upstream.rstrip("/")
        self.codec = codec_for(guard.config.model)
        self.spec = guard.config.proxy
        self._client = client

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            self._client = httpx.AsyncClient(timeout=self.spec.timeout_s, limits=limits)
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if await serve_guard_endpoint(self.guard, scope, receive, send, self._upstream_ready):
            return
        path = scope["path"]
        if scope["method"] == "GET" and path in _OIP_HEALTH and self.codec.model.protocol == "oip":
            ok = await self._upstream_ready(path)
            await send_json(send, 200 if ok else 503, {"live" if "live" in path else "ready": ok})
            return
        m = _OIP_INFER.match(path)
        is_predict = (
            (m is not None)
            if self.codec.model.protocol == "oip"
            else (path in self.spec.predict_paths)
        )
        if not is_predict:
            await send_json(
                send, 404, {"error": "not_found", "message": f"{path} is not exposed by the guard"}
            )
            return
        if scope["method"] != "POST":
            await send_json(
                send,
                405,
                {"error": "method_not_allowed", "message": "predictions are POST requests"},
            )
            return
        headers = headers_of(scope)
        try:
            body = await read_body(receive, self.spec.max_body_bytes, headers.get("content-length"))
        except BodyTooLarge:
            await send_json(
                send,
                413,
                {
                    "error": "payload_too_large",
                    "message": f"body exceeds {self.spec.max_body_bytes} bytes",
                },
            )
            return
        query = scope.get("query_string", b"").decode("latin-1")
        target = self.upstream + path + (f"?{query}" if query else "")

        async def call(request: Request) -> tuple[Prediction, float]:
            return await self._call_upstream(target, body, headers, request)

        status, out_headers, out = await guarded_exchange(
            self.guard, self.codec, body, headers, m.group(1) if m else "", call
        )
        await send_json(send, status, None, out_headers, raw=out)

    async def _call_upstream(
        self, url: str, body: bytes, headers: dict[str, str], request: Request
    ) -> tuple[Prediction, float]:
        t = time.perf_counter()
        try:
            resp = await self.client.post(
                url, content=body, headers=forward_headers(headers, request.principal_id)
            )
        except httpx.TimeoutException:
            UPSTREAM_ERRORS.labels("timeout").inc()
            raise ModelCallError(
                504,
                "upstream_timeout",
                f"the model server did not answer within {self.spec.timeout_s} s",
            ) from None
        except httpx.HTTPError as exc:
            UPSTREAM_ERRORS.labels("unavailable").inc()
            raise ModelCallError(
                502,
                "upstream_unavailable",
                f"the model server is unreachable ({type(exc).__name__})",
            ) from None
        elapsed = time.perf_counter() - t
        if resp.status_code >= 500:
            UPSTREAM_ERRORS.labels("error").inc()
            raise ModelCallError(
                502, "upstream_error", f"the model server failed with status {resp.status_code}"
            )
        if resp.status_code >= 400:
            UPSTREAM_ERRORS.labels("rejected").inc()
            raise ModelCallError(
                resp.status_code,
                "upstream_rejected",
                f"the model server rejected the request ({resp.status_code})",
            )
        try:
            return self.codec.decode_response(resp.content), elapsed
        except (ValueError, KeyError, TypeError) as exc:
            UPSTREAM_ERRORS.labels("unreadable").inc()
            raise ModelCallError(
                502, "upstream_unreadable", f"the model server's answer could not be read: {exc}"
            ) from None

    async def _upstream_ready(self, path: str = "") -> bool:
        probe = path or ("/v2/health/ready" if self.codec.model.protocol == "oip" else "/")
        try:
            resp = await self.client.get(self.upstream + probe, timeout=2.0)
        except httpx.HTTPError:
            return False
        return resp.status_code < 500 if not path else resp.status_code == 200

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                self.guard.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
