"""A small keep-alive HTTP/1.1 connection pool for plain-http upstreams, built on h11.

httpx's asyncio stack costs several milliseconds of CPU per request on a busy
two-core host (measured by `benchmarks/guard_overhead.py`), more than the whole
guard; for the loopback or in-cluster hop to a model server the proxy uses
this pool instead: asyncio streams and h11's parser, one request in flight per
connection, idle connections reused. https upstreams still go through httpx.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

__all__ = ["UpstreamPool", "UpstreamResponse"]


@dataclass
class UpstreamResponse:
    status_code: int
    content: bytes


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        self.writer.close()


class UpstreamPool:
    def __init__(self, base_url: str, *, max_idle: int = 64) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"UpstreamPool serves plain http URLs, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.authority = parts.netloc.encode()
        self.prefix = parts.path.rstrip("/")
        self.max_idle = max_idle
        self._idle: list[_Conn] = []

    async def _connect(self) -> _Conn:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return _Conn(reader, writer)

    async def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> UpstreamResponse:
        """One request; a stale idle connection is retried once on a fresh one."""
        for attempt in (0, 1):
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await asyncio.wait_for(self._connect(), timeout)
            try:
                resp = await asyncio.wait_for(
                    self._exchange(conn, method, path, body, headers), timeout
                )
            except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError) as exc:
                conn.close()
                if reused and attempt == 0:
                    continue
                raise ConnectionError(str(exc) or type(exc).__name__) from None
            except BaseException:
                conn.close()
                raise
            return resp
        raise ConnectionError("upstream closed the connection")  # pragma: no cover

    async def _exchange(
        self, conn: _Conn, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> UpstreamResponse:
        hdrs = [(b"host", self.authority), (b"content-length", str(len(body)).encode())]
        hdrs += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        c = conn.h11
        data = c.send(h11.Request(method=method, target=self.prefix + path, headers=hdrs))
        data += c.send(h11.Data(data=body)) + c.send(h11.EndOfMessage())
        conn.writer.write(data)
        status, chunks = 0, []
        while True:
            event = c.next_event()
            if event is h11.NEED_DATA:
                raw = await conn.reader.read(65536)
                if not raw and c.their_state is not h11.DONE:
                    raise ConnectionError("upstream closed the connection mid-response")
                c.receive_data(raw)
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("upstream closed the connection")
        if c.our_state is h11.DONE and c.their_state is h11.DONE:
            c.start_next_cycle()
            if len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                conn.close()
        else:
            conn.close()
        return UpstreamResponse(status, b"".join(chunks))

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()
