"""Malformed and hostile requests: always a JSON 4xx, never a 5xx or a traceback."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.guard import Guard, load_config
from bastion.guard.adapters.asgi import GuardMiddleware
from tests.guard.conftest import auth
from tests.guard.servers import ThreadServer, model_app

INFER = "/v2/models/iris/infer"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=5),
)
json_values = st.recursive(
    scalars,
    lambda c: st.one_of(
        st.lists(c, max_size=5), st.dictionaries(st.text(max_size=6), c, max_size=4)
    ),
    max_leaves=20,
)
tensors = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["input-0", "x", ""]),
        "shape": st.lists(st.integers(-2, 5), max_size=3),
        "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BOOL", "BYTES", "FP8"]),
        "data": st.one_of(
            st.lists(st.one_of(st.floats(), st.integers(-5, 5), st.text(max_size=2)), max_size=12),
            json_values,
        ),
    }
)
bodies = st.one_of(
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(tensors, max_size=2).map(lambda ts: json.dumps({"inputs": ts}).encode()),
)


@pytest.fixture
def client(write_config, model) -> Any:
    guard = Guard(
        load_config(
            write_config(
                policies=[
                    {"kind": "api_key", "keys_file": str(write_config().parent / "keys.yaml")},
                    {"kind": "input_validation", "max_rows": 16},
                    {"kind": "output_minimisation", "default": {"mode": "label"}},
                ]
            )
        )
    )
    app = GuardMiddleware(model_app(model), guard)
    yield app
    guard.close()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_any_body_gets_a_json_answer_below_500(client: Any, body: bytes) -> None:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://guard") as c:
            return await c.post(
                INFER, content=body, headers={**auth("alice"), "content-type": "application/json"}
            )

    r = asyncio.run(go())
    assert r.status_code < 500, (body, r.text)
    if r.status_code >= 400:
        assert set(r.json()) >= {"error", "message"}


def test_slow_body_times_out_with_408(write_config, model) -> None:
    guard = Guard(load_config(write_config(proxy={"request_timeout_s": 0.3})))
    try:
        with ThreadServer(GuardMiddleware(model_app(model), guard)) as base:
            host, port = base.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port)), timeout=5) as s:
                s.sendall(
                    f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                    f"Authorization: {auth('alice')['Authorization']}\r\n\r\n{{".encode()
                )
                t = time.monotonic()
                answer = b""
                while chunk := s.recv(4096):  # the guard closes the connection after 408
                    answer += chunk
                assert time.monotonic() - t < 3
        text = answer.decode()
        assert text.startswith("HTTP/1.1 408")
        assert '"error":"request_timeout"' in text
    finally:
        guard.close()


def test_an_internal_failure_is_a_json_500_not_a_traceback(write_config, model) -> None:
    guard = Guard(load_config(write_config()))
    assert guard.audit is not None
    guard.audit.close()  # the audit log can no longer be written (e.g. its disk went away)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=GuardMiddleware(model_app(model), guard))
        async with httpx.AsyncClient(transport=transport, base_url="http://guard") as c:
            return await c.post(INFER, json={"inputs": []}, headers=auth("alice"))

    r = asyncio.run(go())
    assert r.status_code == 500
    assert r.json()["error"] == "guard_error"
    guard.store.close()
