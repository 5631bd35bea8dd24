"""The proxy's own HTTP/1.1 front end: one asyncio protocol per connection, on httptools.

`bastion guard serve` shares its host's CPU with the model server it guards,
so every microsecond the proxy spends on a request comes out of the model's
throughput. Behind uvicorn the bare HTTP hop cost about 0.6 ms of CPU per
request: ASGI messages, a task and a cycle object per request, and each answer
written in two sends (status and headers, then the body), each a loopback
write that costs its own syscall and wake-up. This front end parses with the
same C parser, hands the request straight to `GuardProxy.respond`, and writes
each answer in one `transport.write`.

Behaviour (tested in tests/guard/test_front.py and by the proxy tests, which
run against both this front end and uvicorn):

* HTTP/1.1 keep-alive and pipelining: a connection's requests are answered
  in order, one at a time; reading pauses while MAX_PIPELINED wait, or while
  the client does not read its answers (transport flow control).
* Bounded bodies: a declared or received body over `proxy.max_body_bytes`
  gets 413 and the connection is closed (the rest is never read).
* Malformed HTTP (bad request line, header or framing): 400 and close.
  Upgrade requests (WebSocket, h2c) are not supported: 400 and close. A
  request line and headers over MAX_HEAD_BYTES: 431 and close.
* A request not fully received within `proxy.request_timeout_s`: 408 and
  close; an idle keep-alive connection is closed after KEEP_ALIVE_S.
* Each answer carries Date, Content-Type and Content-Length; `Connection:
  close` when the connection ends with it. HEAD answers carry no body.

The limits named above live in `connection.py`, with the per-connection
protocol; this module owns the listening socket, the sweep and shutdown.

Not provided: TLS, HTTP/2, WebSockets. Terminate TLS in front of the guard,
or run `GuardProxy` (an ASGI app) under another server (`--server uvicorn`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from email.utils import formatdate

from bastion.guard.adapters import connection
from bastion.guard.adapters.connection import Connection
from bastion.guard.adapters.proxy import GuardProxy

__all__ = ["FrontServer", "run"]


class FrontServer:
    """Serves one `GuardProxy` on a listening socket until `stop` is set."""

    def __init__(self, proxy: GuardProxy) -> None:
        self.proxy = proxy
        self.connections: set[Connection] = set()
        self.closing = False
        self.now = time.monotonic()
        self.date = formatdate(usegmt=True).encode()
        spec = proxy.spec
        # the sweep runs often enough to honour the request timeout to within a quarter
        self.tick = max(0.02, min(1.0, spec.request_timeout_s / 4, connection.KEEP_ALIVE_S / 4))

    async def serve(self, sock: socket.socket, stop: asyncio.Event, grace_s: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Connection(self), sock=sock, backlog=256)
        sweeper = loop.create_task(self._sweep())
        try:
            await stop.wait()
        finally:
            self.closing = True
            server.close()
            for conn in list(self.connections):
                conn.close()
            deadline = time.monotonic() + grace_s
            while any(c.busy for c in self.connections) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            for conn in list(self.connections):
                if conn.transport is not None:
                    conn.transport.close()
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await self.proxy.aclose()

    async def _sweep(self) -> None:
        timeout = self.proxy.spec.request_timeout_s
        while True:
            await asyncio.sleep(self.tick)
            self.now = time.monotonic()
            self.date = formatdate(usegmt=True).encode()
            for conn in list(self.connections):
                conn.check(self.now, timeout)


def run(proxy: GuardProxy, sock: socket.socket) -> None:
    """Serve until SIGINT/SIGTERM, on uvloop when it is installed; then close cleanly."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on Windows
                loop.add_signal_handler(sig, stop.set)
        await FrontServer(proxy).serve(sock, stop)

    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
