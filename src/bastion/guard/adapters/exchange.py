"""The HTTP side shared by the ASGI middleware and the reverse proxy's two front ends.

Reading a bounded body, answering JSON errors, the guard's own endpoints
(health, readiness, metrics, the review queue), and the one function that
takes a prediction request through the guard around a model call. Answers are
`Reply` values, free of any server: the ASGI adapters send them as two ASGI
messages, the proxy's own HTTP/1.1 front end (`front.py`) as one write.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from bastion.guard.adapters.codec import Codec, MalformedRequest
from bastion.guard.config import ProxySpec
from bastion.guard.core import Guard, Outcome
from bastion.guard.request import Deny, Prediction, Request

__all__ = [
    "BodySource",
    "BodyTooLarge",
    "ModelCallError",
    "Reply",
    "Scope",
    "asgi_body",
    "bounded_body",
    "guard_endpoint",
    "guarded_exchange",
    "is_guard_endpoint",
    "json_reply",
    "read_body",
    "receive_body",
    "send_json",
    "send_reply",
    "serve_guard_endpoint",
]

log = logging.getLogger("bastion.guard")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
# reads the request body up to `limit` bytes; raises BodyTooLarge, or TimeoutError when slow
BodySource = Callable[[int], Awaitable[bytes]]
_REVIEW_BODY_BYTES = 65536


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer, whatever server sends it."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class BodyTooLarge(Exception):
    pass


class ModelCallError(Exception):
    """The model could not answer: `status` 502 (down/broken) or 504 (too slow)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def headers_of(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def read_body(receive: Receive, limit: int, declared: str | None) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            break
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not msg.get("more_body", False):
            break
    return b"".join(chunks)


def asgi_body(receive: Receive, spec: ProxySpec, headers: Mapping[str, str]) -> BodySource:
    """The ASGI request body as a `BodySource`, read within the request timeout."""

    async def body(limit: int) -> bytes:
        async with asyncio.timeout(spec.request_timeout_s):
            return await read_body(receive, limit, headers.get("content-length"))

    return body


async def bounded_body(
    body: BodySource, spec: ProxySpec, limit: int | None = None
) -> bytes | Reply:
    """The body within the size and time bounds, or the 413/408 reply to answer instead."""
    limit = spec.max_body_bytes if limit is None else limit
    try:
        return await body(limit)
    except BodyTooLarge:
        return json_reply(
            413, {"error": "payload_too_large", "message": f"body exceeds {limit} bytes"}
        )
    except TimeoutError:
        return json_reply(
            408,
            {
                "error": "request_timeout",
                "message": f"body not received within {spec.request_timeout_s} s",
            },
            {"connection": "close"},
        )


async def receive_body(
    receive: Receive, send: Send, spec: ProxySpec, headers: dict[str, str]
) -> bytes | None:
    """The request body within the size and time bounds, or None once a 413/408 was sent."""
    got = await bounded_body(asgi_body(receive, spec, headers), spec)
    if isinstance(got, Reply):
        await send_reply(send, got)
        return None
    return got


def json_reply(status: int, doc: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(doc, separators=(",", ":")).encode(), headers or {})


async def send_reply(send: Send, reply: Reply) -> None:
    hdrs = [
        (b"content-type", reply.content_type.encode()),
        (b"content-length", str(len(reply.body)).encode()),
    ]
    hdrs += [
        (k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in reply.headers.items()
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": hdrs})
    await send({"type": "http.response.body", "body": reply.body})


async def send_json(
    send: Send,
    status: int,
    doc: Any,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> None:
    body = raw if raw is not None else json.dumps(doc, separators=(",", ":")).encode()
    await send_reply(send, Reply(status, body, headers or {}, content_type))


def error(status: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": reason, "message": message}


async def guarded_exchange(
    guard: Guard,
    codec: Codec,
    body: bytes,
    headers: Mapping[str, str],
    model_name: str,
    call_model: Callable[[Request], Awaitable[tuple[Prediction, float]]],
) -> Reply:
    """One prediction request through the guard; always an answer, never an exception."""
    try:
        return await _exchange(guard, codec, body, headers, model_name, call_model)
    except Exception:
        # a bug or a broken audit disk: answer JSON, keep the traceback in the server log
        log.exception("guard failed while handling a request")
        return json_reply(
            500, {"error": "guard_error", "message": "the guard could not handle this request"}
        )


async def _exchange(
    guard: Guard,
    codec: Codec,
    body: bytes,
    headers: Mapping[str, str],
    model_name: str,
    call_model: Callable[[Request], Awaitable[tuple[Prediction, float]]],
) -> Reply:
    try:
        request = codec.decode_request(body, headers)
    except MalformedRequest as exc:
        return json_reply(400, {"error": "malformed_request", "message": str(exc)})
    request.model_name = model_name
    adm = guard.admit(request)
    if adm.denied:
        return _outcome(adm.denied, codec, request)
    try:
        prediction, model_s = await call_model(adm.request)
    except ModelCallError as exc:
        return _outcome(guard.fail(adm, exc.status, exc.reason, exc.message), codec, request)
    outcome = guard.complete(adm, prediction, model_s)
    return _outcome(outcome, codec, adm.request)


def _outcome(out: Outcome, codec: Codec, request: Request) -> Reply:
    if out.prediction is not None:
        return Reply(out.status, codec.encode_response(request, out.prediction), out.headers)
    return json_reply(out.status, out.error_body(), out.headers)


def is_guard_endpoint(guard: Guard, path: str) -> bool:
    review = guard.config.proxy.review_path
    return (
        path in ("/guard/healthz", "/guard/readyz", "/metrics")
        or path.rstrip("/") == review
        or path.startswith(review + "/")
    )


async def guard_endpoint(
    guard: Guard,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: BodySource,
    ready: Callable[[], Awaitable[bool]],
) -> Reply | None:
    """The guard's own paths (health, readiness, metrics, review); None for any other path."""
    if not is_guard_endpoint(guard, path):
        return None
    if path == "/guard/healthz":
        return json_reply(200, {"status": "ok"})
    if path == "/guard/readyz":
        ok = guard.ready() and await ready()
        return json_reply(200 if ok else 503, {"ready": ok})
    if path == "/metrics":
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Reply(200, generate_latest(), {}, CONTENT_TYPE_LATEST)
    status, doc = await _review(guard, method, path, query, headers, body)
    return json_reply(status, doc)


async def serve_guard_endpoint(
    guard: Guard, scope: Scope, receive: Receive, send: Send, ready: Callable[[], Awaitable[bool]]
) -> bool:
    """Answer the guard's own paths over ASGI; False when the path is not one of them."""
    if not is_guard_endpoint(guard, scope["path"]):
        return False
    headers = headers_of(scope)
    reply = await guard_endpoint(
        guard,
        scope["method"],
        scope["path"],
        scope.get("query_string", b"").decode("latin-1"),
        headers,
        asgi_body(receive, guard.config.proxy, headers),
        ready,
    )
    assert reply is not None
    await send_reply(send, reply)
    return True


async def _review(
    guard: Guard,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: BodySource,
) -> tuple[int, Any]:
    from bastion.guard.review import ReviewDesk

    desk = ReviewDesk(guard)
    principal = desk.authenticate(dict(headers))
    if isinstance(principal, Deny):
        return principal.status, {"error": principal.reason, "message": principal.message}
    case_id = path[len(guard.config.proxy.review_path) :].strip("/")
    if method == "GET" and not case_id:
        return desk.list(principal, query)
    if method == "GET":
        return desk.show(principal, case_id)
    if method == "POST" and case_id:
        try:
            doc = json.loads(await body(_REVIEW_BODY_BYTES) or b"{}")
        except (ValueError, BodyTooLarge, TimeoutError):
            return error(400, "malformed_request", 'send JSON like {"resolution": "approve"}')
        return desk.resolve(principal, case_id, doc)
    return error(405, "method_not_allowed", f"{method} is not supported on {path}")
