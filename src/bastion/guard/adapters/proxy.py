"""The reverse proxy: `bastion guard serve --upstream URL` in front of any OIP v2 or JSON server.

`GuardProxy.respond` is the proxy, free of any HTTP server: it routes a
request, reads a bounded body, takes it through the guard, forwards the
original bytes to the upstream (hop-by-hop and credential headers stripped)
and returns the guard's view of the result as a `Reply`. Upstream down → 502,
too slow → 504, each a JSON error and an audit record. Two servers run it:
`bastion guard serve` uses the lean HTTP/1.1 front end in `front.py`; the
object itself is also an ASGI app, for uvicorn or embedding.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

import httpx

from bastion.guard.adapters.codec import codec_for
from bastion.guard.adapters.exchange import (
    BodySource,
    ModelCallError,
    Receive,
    Reply,
    Scope,
    Send,
    asgi_body,
    bounded_body,
    guard_endpoint,
    guarded_exchange,
    headers_of,
    is_guard_endpoint,
    json_reply,
    send_reply,
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
        # the guard has the whole body before it forwards: nothing is left to continue
        "expect",
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


def forward_headers(headers: Mapping[str, str], principal: str) -> dict[str, str]:
    named = headers.get("connection")
    drop = HOP_BY_HOP | {h.strip() for h in named.lower().split(",")} if named else HOP_BY_HOP
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
        self._oip = self.codec.model.protocol == "oip"
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

    async def respond(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: BodySource
    ) -> Reply:
        """The answer to one request; `headers` lower-cased, `body` read only when needed."""
        m = _OIP_INFER.match(path) if self._oip else None
        if m is None or method != "POST" or is_guard_endpoint(self.guard, path):
            # everything but an OIP prediction: the guard's own paths, metadata, JSON predictions
            return await self._other(method, path, query, headers, body, m is not None)
        return await self._predict(path, query, headers, body, m.group(1))

    async def _other(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: BodySource,
        infer_path: bool,
    ) -> Reply:
        own = await guard_endpoint(
            self.guard, method, path, query, headers, body, self._upstream_ready
        )
        if own is not None:
            return own
        if method == "GET" and path in _OIP_HEALTH and self._oip:
            ok = await self._upstream_ready(path)
            return json_reply(200 if ok else 503, {"live" if "live" in path else "ready": ok})
        if (
            method == "GET"
            and self.spec.expose_metadata
            and self._oip
            and _OIP_METADATA.match(path)
        ):
            return await self._metadata(headers, path)
        is_predict = infer_path if self._oip else (path in self.spec.predict_paths)
        if not is_predict:
            return json_reply(
                404, {"error": "not_found", "message": f"{path} is not exposed by the guard"}
            )
        if method != "POST":
            return json_reply(
                405, {"error": "method_not_allowed", "message": "predictions are POST requests"}
            )
        return await self._predict(path, query, headers, body, "")

    async def _predict(
        self, path: str, query: str, headers: Mapping[str, str], body: BodySource, model: str
    ) -> Reply:
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media and media != "application/json" and not media.endswith("+json"):
            return json_reply(
                415,
                {
                    "error": "unsupported_media_type",
                    "message": "send the request as application/json",
                },
            )
        raw = await bounded_body(body, self.spec)
        if isinstance(raw, Reply):
            return raw
        target = self.upstream + path + (f"?{query}" if query else "")

        async def call(request: Request) -> tuple[Prediction, float]:
            return await self._call_upstream(target, raw, headers, request)

        return await guarded_exchange(self.guard, self.codec, raw, headers, model, call)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The proxy as an ASGI app (uvicorn, tests, embedding)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = headers_of(scope)
        reply = await self.respond(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            headers,
            asgi_body(receive, self.spec, headers),
        )
        await send_reply(send, reply)

    async def _metadata(self, headers: Mapping[str, str], path: str) -> Reply:
        """Model metadata for authenticated callers only (it tells an attacker shapes/names)."""
        from bastion.guard.review import AUTH_POLICIES, ReviewDesk

        has_auth = any(p.name in AUTH_POLICIES for p in self.guard.policies)
        who = ReviewDesk(self.guard).authenticate(dict(headers)) if has_auth else None
        if isinstance(who, Deny):
            return json_reply(
                who.status, {"error": who.reason, "message": who.message}, who.headers
            )
        # Never pass the upstream's own metadata on (versions, platform, paths):
        # answer from the guard's config with what a client needs to call the model.
        model = _OIP_MODEL.match(path)
        if path.endswith("/ready"):
            ok = await self._upstream_ready("/v2/health/ready")
            return json_reply(200 if ok else 503, {"ready": ok})
        if model is None:
            return json_reply(200, {"name": "bastion-guard", "extensions": []})
        if model.group(1) != self.codec.model.name:
            return json_reply(404, {"error": "not_found", "message": "unknown model"})
        return json_reply(200, minimal_metadata(self.guard))

    async def _call_upstream(
        self, url: str, body: bytes, headers: Mapping[str, str], request: Request
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
        probe = path or ("/v2/health/ready" if self._oip else "/")
        try:
            resp = await self.client.get(self.upstream + probe, timeout=2.0)
        except httpx.HTTPError:
            return False
        return resp.status_code < 500 if not path else resp.status_code == 200

    async def aclose(self) -> None:
        """Close the upstream connections and the guard (audit log, store)."""
        if self._client is not None:
            await self._client.aclose()
        if self._pool is not None:
            await self._pool.aclose()
        self.guard.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
