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
    ModelCallError,
    Receive,
    Scope,
    Send,
    guarded_exchange,
    headers_of,
    receive_body,
    send_json,
    serve_guard_endpoint,
)
from bastion.guard.adapters.upstream import UpstreamPool
from bastion.guard.core import Guard
from bastion.guard.metrics import UPSTREAM_ERRORS
from bastion.guard.request import Deny, Prediction, Request

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
_OIP_METADATA = re.compile(r"^/v2(?:/models/[^/]+(?:/versions/[^/]+)?(?:/ready)?)?$")
_OIP_MODEL = re.compile(r"^/v2/models/([^/]+)(?:/versions/[^/]+)?$")
_DATATYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "int32": "INT32"}


def minimal_metadata(guard: Guard) -> dict[str, object]:
    """What a legitimate OIP client needs to call the model, and nothing more.

    The upstream's own metadata (versions, platform, paths) is never passed on;
    outputs list the label only, which is what the output policy guarantees.
    """
    spec = guard.config.model
    return {
        "name": spec.name,
        "inputs": [
            {"name": i.name, "datatype": _DATATYPES.get(i.dtype, "FP32"), "shape": i.shape}
            for i in spec.inputs
        ],
        "outputs": [{"name": spec.label_output, "datatype": "INT64", "shape": [-1]}],
    }


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
        # plain-http upstreams (loopback, in-cluster) use the lean httptools pool; https uses httpx
        self._pool = (
            UpstreamPool(self.upstream)
            if client is None and self.upstream.startswith("http://")
            else None
        )

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self._pool is not None:
            resp = await self._pool.request(
                "POST", url[len(self.upstream) :], body, headers, self.spec.timeout_s
            )
            return resp.status_code, resp.content
        r = await self.client.post(url, content=body, headers=headers)
        return r.status_code, r.content

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
        if (
            scope["method"] == "GET"
            and self.spec.expose_metadata
            and self.codec.model.protocol == "oip"
            and _OIP_METADATA.match(path)
        ):
            await self._metadata(scope, send, path)
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
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media and media != "application/json" and not media.endswith("+json"):
            await send_json(
                send,
                415,
                {
                    "error": "unsupported_media_type",
                    "message": "send the request as application/json",
                },
            )
            return
        body = await receive_body(receive, send, self.spec, headers)
        if body is None:
            return
        query = scope.get("query_string", b"").decode("latin-1")
        target = self.upstream + path + (f"?{query}" if query else "")

        async def call(request: Request) -> tuple[Prediction, float]:
            return await self._call_upstream(target, body, headers, request)

        status, out_headers, out = await guarded_exchange(
            self.guard, self.codec, body, headers, m.group(1) if m else "", call
        )
        await send_json(send, status, None, out_headers, raw=out)

    async def _metadata(self, scope: Scope, send: Send, path: str) -> None:
        """Model metadata for authenticated callers only (it tells an attacker shapes/names)."""
        from bastion.guard.review import AUTH_POLICIES, ReviewDesk

        has_auth = any(p.name in AUTH_POLICIES for p in self.guard.policies)
        who = ReviewDesk(self.guard).authenticate(headers_of(scope)) if has_auth else None
        if isinstance(who, Deny):
            await send_json(
                send, who.status, {"error": who.reason, "message": who.message}, dict(who.headers)
            )
            return
        # Never pass the upstream's own metadata on (versions, platform, paths):
        # answer from the guard's config with what a client needs to call the model.
        model = _OIP_MODEL.match(path)
        if path.endswith("/ready"):
            ok = await self._upstream_ready("/v2/health/ready")
            await send_json(send, 200 if ok else 503, {"ready": ok})
        elif model is None:
            await send_json(send, 200, {"name": "bastion-guard", "extensions": []})
        elif model.group(1) != self.codec.model.name:
            await send_json(send, 404, {"error": "not_found", "message": "unknown model"})
        else:
            await send_json(send, 200, minimal_metadata(self.guard))

    async def _call_upstream(
        self, url: str, body: bytes, headers: dict[str, str], request: Request
    ) -> tuple[Prediction, float]:
        t = time.perf_counter()
        try:
            status, content = await self._post(
                url, body, forward_headers(headers, request.principal_id)
            )
        except (httpx.TimeoutException, TimeoutError):
            UPSTREAM_ERRORS.labels("timeout").inc()
            raise ModelCallError(
                504,
                "upstream_timeout",
                f"the model server did not answer within {self.spec.timeout_s} s",
            ) from None
        except (httpx.HTTPError, OSError) as exc:
            UPSTREAM_ERRORS.labels("unavailable").inc()
            raise ModelCallError(
                502,
                "upstream_unavailable",
                f"the model server is unreachable ({type(exc).__name__})",
            ) from None
        elapsed = time.perf_counter() - t
        if status >= 500:
            UPSTREAM_ERRORS.labels("error").inc()
            raise ModelCallError(
                502, "upstream_error", f"the model server failed with status {status}"
            )
        if status >= 400:
            UPSTREAM_ERRORS.labels("rejected").inc()
            raise ModelCallError(
                status,
                "upstream_rejected",
                f"the model server rejected the request ({status})",
            )
        try:
            return self.codec.decode_response(content), elapsed
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
                if self._pool is not None:
                    await self._pool.aclose()
                self.guard.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
