"""One HTTP/1.1 connection of the guard's front end: an asyncio protocol on httptools.

Requests are parsed by httptools' callbacks, queued, and answered one at a
time in order by `GuardProxy.respond`; each answer is one `transport.write`.
The limits (pipelined requests, head size, keep-alive) are module constants so
that a test can lower them. `front.py` owns the listening side.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING, cast
from urllib.parse import unquote

import httptools

from bastion.guard.adapters.exchange import BodyTooLarge, Reply, json_reply

if TYPE_CHECKING:
    from bastion.guard.adapters.front import FrontServer

__all__ = ["KEEP_ALIVE_S", "MAX_HEAD_BYTES", "MAX_PIPELINED", "Connection"]

log = logging.getLogger("bastion.guard")

KEEP_ALIVE_S = 5.0
MAX_PIPELINED = 16
MAX_HEAD_BYTES = 1 << 20  # request line + headers, counted per read (so a little over-counted)
_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _Refusal(Exception):
    """Raised from a parser callback: answer `reply` (after earlier requests) and close."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


class _Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "path", "query")

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        keep_alive: bool,
    ) -> None:
        self.method, self.path, self.query = method, path, query
        self.headers, self.body, self.keep_alive = headers, body, keep_alive

    async def read(self, limit: int) -> bytes:
        """The `BodySource` of this request: its body arrived in full before routing."""
        if len(self.body) > limit:
            raise BodyTooLarge
        return self.body


class Connection(asyncio.Protocol):
    def __init__(self, front: FrontServer) -> None:
        self.front = front
        self.loop = asyncio.get_running_loop()
        self.limit = front.proxy.spec.max_body_bytes
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[_Request | Reply] = deque()
        self.busy = False  # a task is answering the queue
        self.stopped = False  # no more requests are read (an error, an upgrade, closing)
        self.write_paused = False
        self.read_paused = False
        self.started: float | None = None  # when the request being received began
        self.in_head = False  # between a request's first byte and the end of its headers
        self.head_bytes = 0
        self.last = time.monotonic()  # when the connection last finished something
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0

    # --- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        self.front.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        # a request being answered is finished anyway: its audit record is written
        self.front.connections.discard(self)
        self.stopped = True

    def pause_writing(self) -> None:
        self.write_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._flow()

    def data_received(self, data: bytes) -> None:
        if self.stopped:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refusal = exc.__context__
            self._refuse(refusal.reply if isinstance(refusal, _Refusal) else _MALFORMED)
        except httptools.HttpParserUpgrade:  # CONNECT; other upgrades are refused above
            self._refuse(_UPGRADE)
        except httptools.HttpParserError:
            self._refuse(_MALFORMED)
        else:
            if self.in_head:  # the parser buffers a head in parts: bound what it may hold
                self.head_bytes += len(data)
                if self.head_bytes > MAX_HEAD_BYTES:
                    self._refuse(
                        _error(
                            431,
                            "headers_too_large",
                            f"request line and headers exceed {MAX_HEAD_BYTES} bytes",
                        )
                    )
        if self.queue and not self.busy:
            self._start()

    # --- httptools callbacks -------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.started = time.monotonic()
        self.in_head, self.head_bytes = True, 0
        self._url = b""
        self._headers = {}
        self._body = []
        self._size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # the last of repeated headers wins, as in the ASGI adapters' view of headers
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.in_head = False
        declared = self._headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            raise _Refusal(_too_large(self.limit))
        expect = self._headers.get("expect", "").lower()
        # interim answers only when no earlier answer is pending, so they cannot interleave
        if expect == "100-continue" and not self.queue and not self.busy and self.transport:
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.limit:
            raise _Refusal(_too_large(self.limit))
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.started = None
        if self.parser.should_upgrade():
            raise _Refusal(_UPGRADE)
        url = self._url
        raw, _, query = url.partition(b"?")
        if not raw.startswith(b"/"):  # absolute-form (`GET http://host/path`) or `*`
            try:
                parsed = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                raise _Refusal(_MALFORMED) from None
            raw, query = parsed.path or b"/", parsed.query or b""
        try:
            path = raw.decode("ascii")
        except UnicodeDecodeError:
            raise _Refusal(
                _error(400, "malformed_http", "the request target is not ASCII")
            ) from None
        if "%" in path:
            path = unquote(path)
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self.queue.append(
            _Request(
                self.parser.get_method().decode("ascii"),
                path,
                query.decode("latin-1"),
                self._headers,
                body,
                self.parser.should_keep_alive(),
            )
        )
        self._body = []
        if len(self.queue) >= MAX_PIPELINED:
            self._flow()

    # --- answering -----------------------------------------------------------------------
    def _start(self) -> None:
        self.busy = True
        self.loop.create_task(self._answer())

    async def _answer(self) -> None:
        proxy = self.front.proxy
        try:
            while self.queue:
                if self.transport is None or self.transport.is_closing():
                    self.queue.clear()  # the client left: what it queued is not started
                    return
                item = self.queue.popleft()
                if self.read_paused:
                    self._flow()
                if isinstance(item, Reply):
                    self._send(item, "GET", keep_alive=False)
                    return
                try:
                    reply = await proxy.respond(
                        item.method, item.path, item.query, item.headers, item.read
                    )
                except Exception:
                    log.exception("guard failed while handling a request")
                    reply = _error(500, "guard_error", "the guard could not handle this request")
                keep = (
                    item.keep_alive
                    and not self.front.closing
                    and reply.headers.get("connection") != "close"
                )
                self._send(reply, item.method, keep_alive=keep)
                if not keep:
                    return
        finally:
            self.busy = False
            self.last = time.monotonic()

    def _send(self, reply: Reply, method: str, *, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        body = reply.body
        parts = [
            _STATUS_LINES.get(reply.status) or f"HTTP/1.1 {reply.status} \r\n".encode(),
            b"content-type: ",
            reply.content_type.encode("latin-1"),
            b"\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\ndate: ",
            self.front.date,
        ]
        for name, value in reply.headers.items():
            key, val = name.lower(), str(value)
            if key == "connection" or "\r" in val or "\n" in val or "\r" in key or "\n" in key:
                continue  # framing is this server's business; no header may split the answer
            try:
                parts += (b"\r\n", key.encode("latin-1"), b": ", val.encode("latin-1"))
            except UnicodeEncodeError:  # not representable in HTTP/1.1: left out, not a crash
                continue
        parts.append(b"\r\n\r\n" if keep_alive else b"\r\nconnection: close\r\n\r\n")
        if method != "HEAD":
            parts.append(body)
        transport.write(b"".join(parts))
        if not keep_alive:
            self.stopped = True
            transport.close()

    def _refuse(self, reply: Reply) -> None:
        """Stop reading; answer `reply` once the requests before it are answered, then close."""
        self.stopped = True
        self.started = None
        self.queue.append(reply)
        self._flow()

    def _flow(self) -> None:
        """Pause reading while the queue is full, the client is not reading, or we stopped."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        pause = self.stopped or self.write_paused or len(self.queue) >= MAX_PIPELINED
        if pause and not self.read_paused:
            transport.pause_reading()
        elif not pause and self.read_paused:
            transport.resume_reading()
        self.read_paused = pause

    def check(self, now: float, request_timeout: float) -> None:
        """The server's periodic sweep: time out slow requests and idle connections."""
        if self.busy or self.transport is None or self.transport.is_closing():
            return
        if self.started is not None and now - self.started > request_timeout:
            self._refuse(
                _error(
                    408,
                    "request_timeout",
                    f"request not received within {request_timeout} s",
                )
            )
            self._start()
        elif self.started is None and not self.queue and now - self.last > KEEP_ALIVE_S:
            self.stopped = True
            self.transport.close()

    def close(self) -> None:
        """Close when idle (shutdown); a busy connection closes after its answer."""
        self.stopped = True
        if self.transport is not None and not self.busy and not self.queue:
            self.transport.close()


def _error(status: int, reason: str, message: str) -> Reply:
    return json_reply(status, {"error": reason, "message": message})


def _too_large(limit: int) -> Reply:
    return _error(413, "payload_too_large", f"body exceeds {limit} bytes")


_UPGRADE = _error(400, "upgrade_not_supported", "protocol upgrades are not supported here")
_MALFORMED = _error(400, "malformed_http", "the request is not valid HTTP/1.1")
