"""A small keep-alive HTTP/1.1 connection pool for plain-http upstreams, built on httptools.

On a two-core host the proxy shares the CPU with the model server it guards,
so every microsecond it spends per request comes out of the model's
throughput (`benchmarks/guard_overhead.py` measures the ratio). httpx's asyncio
stack cost several milliseconds of CPU per request there, and a pure-Python
HTTP parser (h11) still about half a millisecond; this pool is an asyncio
protocol around the C parser that uvicorn itself uses, one request in flight
per connection, idle connections reused. https upstreams still go through httpx.

Timeouts are deadlines checked by one timer per pool (every quarter of the
shortest timeout, while requests are in flight) rather than a timer armed and
cancelled per request; a slow upstream is cut off within 1.25 timeouts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = ["UpstreamPool", "UpstreamResponse"]


@dataclass
class UpstreamResponse:
    status_code: int
    content: bytes


class _Conn(asyncio.Protocol):
    """One upstream connection; `pending` is the response the current request waits for."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.pending: asyncio.Future[UpstreamResponse] | None = None
        self.chunks: list[bytes] = []
        self.closed = False
        self.keep_alive = True
        self.deadline = 0.0  # loop time by which the pending response must be complete

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"unreadable upstream response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("upstream closed the connection"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue, 103): the final one follows
            self.chunks = []
            return
        self.keep_alive = self.parser.should_keep_alive()
        if self.pending is not None and not self.pending.done():
            self.pending.set_result(UpstreamResponse(status, b"".join(self.chunks)))
        self.chunks = []

    def _fail(self, exc: Exception) -> None:
        if self.pending is not None and not self.pending.done():
            self.pending.set_exception(exc)

    def send(self, data: bytes) -> asyncio.Future[UpstreamResponse]:
        if self.transport is None:  # pragma: no cover - create_connection sets it first
            raise ConnectionError("upstream connection not established")
        self.pending = asyncio.get_running_loop().create_future()
        self.chunks = []
        self.transport.write(data)
        return self.pending

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def expire(self) -> None:
        """The deadline passed: the waiting request gets TimeoutError; the connection is done."""
        self._fail(TimeoutError("the upstream did not answer in time"))
        self.close()


class UpstreamPool:
    def __init__(self, base_url: str, *, max_idle: int = 64) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"UpstreamPool serves plain http URLs, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.authority = parts.netloc
        self.prefix = parts.path.rstrip("/")
        self.max_idle = max_idle
        self._idle: list[_Conn] = []
        self._busy: set[_Conn] = set()
        self._tick = 1.0
        self._timer: asyncio.TimerHandle | None = None

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Conn, self.host, self.port)
        return conn

    def _head(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        lines = [
            f"{method} {self.prefix}{path} HTTP/1.1",
            f"host: {self.authority}",
            f"content-length: {len(body)}",
        ]
        for k, v in headers.items():
            # the server in front parsed these already and refuses CR/LF; a header that
            # could still split the upstream request is dropped, not trusted
            if "\r" in k or "\n" in k or "\r" in v or "\n" in v or ":" in k:
                continue
            lines.append(f"{k}: {v}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> UpstreamResponse:
        """One request; a stale idle connection is retried once on a fresh one."""
        data = self._head(method, path, body, headers)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if timeout < self._tick * 4:
            self._tick = max(0.01, min(1.0, timeout / 4))
        for attempt in (0, 1):
            conn = None
            while self._idle and conn is None:
                candidate = self._idle.pop()
                conn = None if candidate.closed else candidate
            reused = conn is not None
            try:
                if conn is None:  # connecting is the rare case: a timer of its own is fine
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
                        conn = await self._connect()
                conn.deadline = deadline
                self._busy.add(conn)
                if self._timer is None:
                    self._timer = loop.call_later(self._tick, self._sweep)
                try:
                    resp = await conn.send(data)
                finally:
                    self._busy.discard(conn)
            except ConnectionError as exc:
                if conn is not None:
                    conn.close()
                if reused and attempt == 0:
                    continue
                raise ConnectionError(str(exc) or type(exc).__name__) from None
            except BaseException:
                if conn is not None:
                    conn.close()
                raise
            if conn.keep_alive and not conn.closed and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                conn.close()
            return resp
        raise ConnectionError("upstream closed the connection")  # pragma: no cover

    def _sweep(self) -> None:
        """Expire the requests past their deadline; re-arm while any are in flight."""
        self._timer = None
        if not self._busy:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        for conn in [c for c in self._busy if c.deadline <= now]:
            self._busy.discard(conn)
            conn.expire()
        if self._busy:
            self._timer = loop.call_later(self._tick, self._sweep)

    async def aclose(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._idle:
            self._idle.pop().close()
