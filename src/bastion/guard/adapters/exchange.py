"""The HTTP side shared by the ASGI middleware and the reverse proxy.

Reading a bounded body, answering JSON errors, the guard's own endpoints
(health, readiness, metrics, the review queue), and the one function that
takes a prediction request through the guard around a model call.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bastion.guard.adapters.codec import Codec, MalformedRequest
from bastion.guard.config import ProxySpec
from bastion.guard.core import Guard, Outcome
from bastion.guard.request import Deny, Prediction, Request

__all__ = [
    "BodyTooLarge",
    "ModelCallError",
    "Scope",
    "guarded_exchange",
    "read_body",
    "receive_body",
    "send_json",
    "serve_guard_endpoint",
]

log = logging.getLogger("bastion.guard")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


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


async def receive_body(
    receive: Receive, send: Send, spec: ProxySpec, headers: dict[str, str]
) -> bytes | None:
    """The request body within the size and time bounds, or None once a 413/408 was sent."""
    try:
        async with asyncio.timeout(spec.request_timeout_s):
            return await read_body(receive, spec.max_body_bytes, headers.get("content-length"))
    except BodyTooLarge:
        await send_json(
            send,
            413,
            {"error": "payload_too_large", "message": f"body exceeds {spec.max_body_bytes} bytes"},
        )
    except TimeoutError:
        await send_json(
            send,
            408,
            {
                "error": "request_timeout",
                "message": f"body not received within {spec.request_timeout_s} s",
            },
            {"connection": "close"},
        )
    return None


async def send_json(
    send: Send,
    status: int,
    doc: Any,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> None:
    body = raw if raw is not None else json.dumps(doc, separators=(",", ":")).encode()
    hdrs = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    hdrs += [
        (k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in (headers or {}).items()
    ]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


def error(status: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": reason, "message": message}


async def guarded_exchange(
    guard: Guard,
    codec: Codec,
    body: bytes,
    headers: dict[str, str],
    model_name: str,
    call_model: Callable[[Request], Awaitable[tuple[Prediction, float]]],
) -> tuple[int, dict[str, str], bytes]:
    """One prediction request through the guard; always an answer, never an exception."""
    try:
        return await _exchange(guard, codec, body, headers, model_name, call_model)
    except Exception:
        # a bug or a broken audit disk: answer JSON, keep the traceback in the server log
        log.exception("guard failed while handling a request")
        return _json(
            500, {"error": "guard_error", "message": "the guard could not handle this request"}, {}
        )


async def _exchange(
    guard: Guard,
    codec: Codec,
    body: bytes,
    headers: dict[str, str],
    model_name: str,
    call_model: Callable[[Request], Awaitable[tuple[Prediction, float]]],
) -> tuple[int, dict[str, str], bytes]:
    try:
        request = codec.decode_request(body, headers)
    except MalformedRequest as exc:
        return _json(400, {"error": "malformed_request", "message": str(exc)}, {})
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


def _json(status: int, doc: Any, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    return status, headers, json.dumps(doc, separators=(",", ":")).encode()


def _outcome(out: Outcome, codec: Codec, request: Request) -> tuple[int, dict[str, str], bytes]:
    if out.prediction is not None:
        return out.status, out.headers, codec.encode_response(request, out.prediction)
    return _json(out.status, out.error_body(), out.headers)


async def serve_guard_endpoint(
    guard: Guard, scope: Scope, receive: Receive, send: Send, ready: Callable[[], Awaitable[bool]]
) -> bool:
    """Answer the guard's own paths; False when the path is not one of them."""
    path, method = scope["path"], scope["method"]
    if path == "/guard/healthz":
        await send_json(send, 200, {"status": "ok"})
    elif path == "/guard/readyz":
        ok = guard.ready() and await ready()
        await send_json(send, 200 if ok else 503, {"ready": ok})
    elif path == "/metrics":
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        await send_json(send, 200, None, raw=generate_latest(), content_type=CONTENT_TYPE_LATEST)
    elif path.rstrip("/") == guard.config.proxy.review_path or path.startswith(
        guard.config.proxy.review_path + "/"
    ):
        status, doc = await _review(guard, scope, receive, method, path)
        await send_json(send, status, doc)
    else:
        return False
    return True


async def _review(
    guard: Guard, scope: Scope, receive: Receive, method: str, path: str
) -> tuple[int, Any]:
    from bastion.guard.review import ReviewDesk

    desk = ReviewDesk(guard)
    principal = desk.authenticate(headers_of(scope))
    if isinstance(principal, Deny):
        return principal.status, {"error": principal.reason, "message": principal.message}
    case_id = path[len(guard.config.proxy.review_path) :].strip("/")
    if method == "GET" and not case_id:
        return desk.list(principal, scope.get("query_string", b"").decode())
    if method == "GET":
        return desk.show(principal, case_id)
    if method == "POST" and case_id:
        try:
            body = json.loads(await read_body(receive, 65536, None) or b"{}")
        except (ValueError, BodyTooLarge):
            return error(400, "malformed_request", 'send JSON like {"resolution": "approve"}')
        return desk.resolve(principal, case_id, body)
    return error(405, "method_not_allowed", f"{method} is not supported on {path}")
