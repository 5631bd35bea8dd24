"""The listening socket bastion's own servers use: accepted connections must not wait on Nagle."""

from __future__ import annotations

import asyncio
import socket

import pytest

from bastion.guard.adapters.listener import listen

pytestmark = pytest.mark.network


async def _accepted_nodelay(sock: socket.socket) -> int:
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = writer.get_extra_info("socket")
        seen.set_result(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=sock)
    port = sock.getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(seen, 5)
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


def test_accepted_connections_have_nagle_off() -> None:
    # A plain socket.socket(AF_INET) listener yields 0 here: asyncio leaves Nagle on.
    assert asyncio.run(_accepted_nodelay(listen("127.0.0.1", 0))) != 0


def test_a_taken_port_raises_and_closes_the_socket() -> None:
    first = listen("127.0.0.1", 0)
    try:
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            other.bind(("127.0.0.1", 0))
            other.listen(1)
            with pytest.raises(OSError):
                listen("127.0.0.1", other.getsockname()[1])
    finally:
        first.close()
