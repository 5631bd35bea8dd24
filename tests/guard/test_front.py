"""The proxy's own HTTP/1.1 front end on raw sockets: framing, pipelining, bounds, timeouts.

The behaviour shared with uvicorn (routes, policies, errors) is covered by the proxy tests,
which run against both front ends; these are the parts a server is responsible for.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.guard import Guard, load_config
from bastion.guard.adapters import connection as connection_module
from bastion.guard.adapters.proxy import GuardProxy
from bastion.guard.verification import verify_log
from tests.guard.conftest import token
from tests.guard.servers import ThreadFront, ThreadServer, model_app

pytestmark = pytest.mark.network

INFER = "/v2/models/iris/infer"
ROW = json.dumps(
    {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [5, 3, 1, 0]}]}
).encode()


@pytest.fixture
def lean(write_config: Callable[..., Path], upstream: str) -> Iterator[Callable[..., str]]:
    """Start the lean front end in front of `upstream` (or `target`); yields its host:port."""
    servers: list[ThreadFront] = []

    def start(target: str | None = None, **over: Any) -> str:
        guard = Guard(load_config(write_config(**over)))
        server = ThreadFront(GuardProxy(guard, target or upstream))
        servers.append(server)
        return server.__enter__().removeprefix("http://")

    yield start
    for s in servers:
        s.__exit__(None, None, None)


def connect(addr: str) -> socket.socket:
    host, port = addr.split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def post(who: str = "alice", body: bytes = ROW, extra: str = "") -> bytes:
    return (
        f"POST {INFER} HTTP/1.1\r\nHost: guard\r\nAuthorization: Bearer {token(who)}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


class Answer:
    def __init__(self, head: bytes, body: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def read_answers(sock: socket.socket, n: int, head_only: bool = False) -> list[Answer]:
    """`n` answers from `sock`, in order (a HEAD answer has a length but no body)."""
    buf = b""
    out: list[Answer] = []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {len(out)} answers")
            buf += chunk
        head, _, buf = buf.partition(b"\r\n\r\n")
        answer = Answer(head, b"")
        length = 0 if head_only else int(answer.headers.get("content-length", "0"))
        while len(buf) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed mid-body")
            buf += chunk
        answer.body, buf = buf[:length], buf[length:]
        out.append(answer)
    return out


def closed(sock: socket.socket) -> bool:
    """True once the server has closed the connection (read returns EOF)."""
    sock.settimeout(3)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_keep_alive_and_pipelined_requests_are_answered_in_order(lean) -> None:
    addr = lean()
    with connect(addr) as s:
        # alice is refused a 6th prediction per minute; bob is not: the order shows in the answers
        s.sendall(b"".join(post("alice") for _ in range(6)) + post("bob"))
        answers = read_answers(s, 7)
        assert [a.status for a in answers] == [200] * 5 + [429, 200]
        assert [a.headers.get("ratelimit-remaining") for a in answers[:5]] == list("43210")
        s.sendall(b"GET /guard/healthz HTTP/1.1\r\nHost: guard\r\n\r\n")
        (health,) = read_answers(s, 1)
        assert health.json() == {"status": "ok"}
        assert "connection" not in health.headers and health.headers["date"].endswith("GMT")


def test_http10_without_keep_alive_is_closed_after_the_answer(lean) -> None:
    addr = lean()
    with connect(addr) as s:
        s.sendall(b"GET /guard/healthz HTTP/1.0\r\n\r\n")
        (answer,) = read_answers(s, 1)
        assert answer.status == 200 and answer.headers["connection"] == "close"
        assert closed(s)


def test_head_answers_have_a_length_but_no_body(lean) -> None:
    addr = lean()
    with connect(addr) as s:
        s.sendall(b"HEAD /guard/healthz HTTP/1.1\r\nHost: guard\r\n\r\n")
        (answer,) = read_answers(s, 1, head_only=True)
        assert answer.status == 200 and int(answer.headers["content-length"]) > 0
        s.sendall(b"GET /guard/healthz HTTP/1.1\r\nHost: guard\r\n\r\n")
        assert read_answers(s, 1)[0].json() == {"status": "ok"}  # nothing stray in between


def test_declared_body_over_the_limit_is_413_before_it_is_sent(lean) -> None:
    addr = lean(proxy={"max_body_bytes": 1000})
    with connect(addr) as s:
        s.sendall(post("alice"))
        s.sendall(
            f"POST {INFER} HTTP/1.1\r\nHost: guard\r\nContent-Length: 5000000\r\n\r\n".encode()
        )
        first, refused = read_answers(s, 2)
        assert first.status == 200  # the request before the oversized one is still answered
        assert refused.status == 413 and refused.json()["error"] == "payload_too_large"
        assert refused.headers["connection"] == "close"
        assert closed(s)


def test_chunked_body_over_the_limit_is_413(lean) -> None:
    addr = lean(proxy={"max_body_bytes": 1000})
    with connect(addr) as s:
        s.sendall(
            f"POST {INFER} HTTP/1.1\r\nHost: guard\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        for _ in range(3):
            s.sendall(b"200\r\n" + b"x" * 512 + b"\r\n")
        (answer,) = read_answers(s, 1)
        assert answer.status == 413 and closed(s)


def test_chunked_body_within_the_limit_is_a_prediction(lean) -> None:
    addr = lean()
    with connect(addr) as s:
        half = len(ROW) // 2
        s.sendall(
            f"POST {INFER} HTTP/1.1\r\nHost: guard\r\nTransfer-Encoding: chunked\r\n"
            f"Authorization: Bearer {token('alice')}\r\n\r\n".encode()
            + f"{half:x}\r\n".encode()
            + ROW[:half]
            + f"\r\n{len(ROW) - half:x}\r\n".encode()
            + ROW[half:]
            + b"\r\n0\r\n\r\n"
        )
        (answer,) = read_answers(s, 1)
        assert answer.status == 200 and answer.json()["outputs"][0]["data"] == [0]


@pytest.mark.parametrize(
    "raw",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET /guard/healthz HTTP/1.1\r\nBad Header\r\n\r\n",
        b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
        b"GET /guard/h\xffz HTTP/1.1\r\nHost: guard\r\n\r\n",
    ],
)
def test_malformed_http_is_a_json_400_and_close(lean, raw: bytes) -> None:
    addr = lean()
    with connect(addr) as s:
        s.sendall(raw)
        (answer,) = read_answers(s, 1)
        assert answer.status == 400
        assert answer.json()["error"] == "malformed_http"
        assert answer.headers["connection"] == "close" and closed(s)


def test_an_endless_head_is_cut_off_with_431(lean, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser buffers a header until its end; the server bounds what it may buffer."""
    monkeypatch.setattr(connection_module, "MAX_HEAD_BYTES", 8192)
    addr = lean()
    with connect(addr) as s:
        # 12 KiB of one header value, never finished (sent at once: read in full, no reset)
        s.sendall(b"GET /guard/healthz HTTP/1.1\r\nHost: guard\r\nX-Fill: " + b"a" * 12288)
        (answer,) = read_answers(s, 1)
        assert answer.status == 431 and answer.json()["error"] == "headers_too_large"
        assert closed(s)


def test_absolute_form_targets_are_routed_by_their_path(lean) -> None:
    addr = lean()
    with connect(addr) as s:
        s.sendall(b"GET http://guard/guard/healthz?x=1 HTTP/1.1\r\nHost: guard\r\n\r\n")
        assert read_answers(s, 1)[0].json() == {"status": "ok"}
        s.sendall(b"OPTIONS * HTTP/1.1\r\nHost: guard\r\n\r\n")
        assert read_answers(s, 1)[0].json()["error"] == "not_found"


def test_upgrade_requests_are_refused(lean) -> None:
    addr = lean()
    with connect(addr) as s:
        s.sendall(
            b"GET /guard/healthz HTTP/1.1\r\nHost: guard\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\n\r\n"
        )
        (answer,) = read_answers(s, 1)
        assert answer.status == 400 and answer.json()["error"] == "upgrade_not_supported"
        assert closed(s)


def test_a_slow_request_gets_408_and_the_connection_is_closed(lean) -> None:
    addr = lean(proxy={"request_timeout_s": 0.3})
    with connect(addr) as s:
        s.sendall(post("alice")[:-10])  # the last bytes of the body never come
        t = time.monotonic()
        (answer,) = read_answers(s, 1)
        assert 0.25 < time.monotonic() - t < 3
        assert answer.status == 408 and answer.json()["error"] == "request_timeout"
        assert closed(s)


def test_idle_keep_alive_connections_are_closed(lean, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection_module, "KEEP_ALIVE_S", 0.3)
    addr = lean()
    with connect(addr) as s:
        s.sendall(b"GET /guard/healthz HTTP/1.1\r\nHost: guard\r\n\r\n")
        read_answers(s, 1)
        t = time.monotonic()
        assert closed(s)
        assert time.monotonic() - t < 2.5


def test_expect_100_continue_gets_the_interim_answer(lean) -> None:
    addr = lean()
    with connect(addr) as s:
        head, _, body = post("alice", extra="Expect: 100-continue\r\n").partition(b"\r\n\r\n")
        s.sendall(head + b"\r\n\r\n")
        interim = s.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(body)
        assert read_answers(s, 1)[0].status == 200


def test_a_client_that_leaves_mid_prediction_still_leaves_an_audit_record(
    lean, model: Any, tmp_path: Path
) -> None:
    with ThreadServer(model_app(model, delay_s=0.3)) as slow:
        addr = lean(target=slow)
        with connect(addr) as s:
            s.sendall(post("alice"))
        deadline = time.monotonic() + 5
        decided: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not decided:
            time.sleep(0.05)
            lines = (tmp_path / "audit.jsonl").read_text().splitlines()
            decided = [r for r in map(json.loads, lines) if r.get("event") == "decision"]
        assert [r["decision"] for r in decided] == ["allow"]
        assert verify_log([tmp_path / "audit.jsonl"]).ok


def test_a_client_that_never_reads_its_answers_is_not_read_either(lean) -> None:
    """Flow control: the server stops reading a connection whose answers pile up unread,
    so its sends block instead of growing the server's buffers; others are still served."""
    addr = lean()
    request = b"GET /guard/healthz HTTP/1.1\r\nHost: guard\r\n\r\n" * 64
    with connect(addr) as greedy:
        greedy.setblocking(False)
        blocked = False
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not blocked:
            try:
                greedy.send(request)
            except BlockingIOError:
                blocked = True
        assert blocked
        with connect(addr) as other:
            other.sendall(request[: len(request) // 64])
            assert read_answers(other, 1)[0].status == 200
