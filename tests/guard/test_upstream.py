"""The proxy's upstream connection pool against a raw HTTP/1.1 server on loopback."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from bastion.guard.adapters.upstream import UpstreamPool

pytestmark = pytest.mark.network


def _serve(sock: socket.socket, answers: list[bytes]) -> None:
    """Answer each request on one connection with the next canned bytes, then close."""
    conn, _ = sock.accept()
    with conn:
        for answer in answers:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += conn.recv(65536)
            conn.sendall(answer)


def test_interim_answers_are_skipped_for_the_final_one() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        answers = [
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nyes",
        ]
        thread = threading.Thread(target=_serve, args=(sock, answers), daemon=True)
        thread.start()

        async def go() -> list[tuple[int, bytes]]:
            pool = UpstreamPool(f"http://127.0.0.1:{sock.getsockname()[1]}")
            try:
                out = []
                for _ in answers:  # the second request reuses the kept-alive connection
                    r = await pool.request("POST", "/infer", b"{}", {}, 5.0)
                    out.append((r.status_code, r.content))
                return out
            finally:
                await pool.aclose()

        assert asyncio.run(go()) == [(200, b"ok"), (201, b"yes")]
        thread.join(timeout=5)
