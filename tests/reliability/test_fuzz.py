"""Fuzzed requests against a real guard process: never a 5xx, every error a JSON 4xx.

Hypothesis builds hostile requests — random paths and methods, broken and
oversized JSON, OIP documents with wrong shapes, types and values, odd headers
and credentials — and sends them over loopback to `bastion guard serve`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability import processes as P
from tests.reliability.conftest import INFER, auth, config_writer, write_keys

pytestmark = [pytest.mark.network, pytest.mark.slow]

PATHS = [INFER, "/v2/models/iris/versions/1/infer", "/v2/models/other/infer", "/guard/review"]
PATHS += ["/guard/review/1", "/guard/readyz", "/metrics", "/v2/health/ready", "/predict"]

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.text(max_size=4),
    st.booleans(),
    st.none(),
)
_tensor = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["input-0", "input-1", "", "x" * 300]),
        "shape": st.lists(st.integers(min_value=-3, max_value=9), max_size=4) | _json,
        "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BYTES", "BOOL", "FP16", "nope"]),
        "data": st.lists(_numbers, max_size=40) | _json,
    }
)
_oip = st.fixed_dictionaries({"inputs": st.lists(_tensor, max_size=3) | _json})
_body = st.one_of(
    _oip.map(lambda d: json.dumps(d).encode()),
    _json.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=300),
    st.just(b"{" * 5000),
    st.just(b"[" + b"1," * 3000 + b"1]"),
)
_headers = st.dictionaries(
    st.sampled_from(
        ["authorization", "x-api-key", "content-type", "x-request-id", "x-forwarded-for"]
    ),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    max_size=3,
)


@pytest.fixture(scope="module")
def guard_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("fuzz")
    cfg = config_writer(tmp, write_keys(tmp))(quota=["100000 total"])
    model = P.upstream(tmp)
    guard = P.guard(tmp, cfg, P.base(model))
    with P.running(model, guard):
        yield P.base(guard)
        assert guard.alive(), guard.output()
    check = P.verify_log(tmp / "guard-audit.jsonl")
    assert check.returncode == 0, check.stdout + check.stderr


def _check(resp: httpx.Response) -> None:
    assert resp.status_code < 500, (resp.status_code, resp.text[:300])
    if resp.status_code >= 400:
        doc: Any = resp.json()
        assert isinstance(doc, dict) and isinstance(doc.get("error"), str), resp.text[:300]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH"]),
    path=st.sampled_from(PATHS) | st.text(max_size=30).map(lambda t: "/" + t.lstrip("/")),
    payload=_body,
    headers=_headers,
    signed=st.booleans(),
)
def test_fuzzed_requests_never_get_a_5xx(
    guard_url: str, method: str, path: str, payload: bytes, headers: dict[str, str], signed: bool
) -> None:
    if signed:
        headers = {**headers, **auth("carol")}
    try:
        url = httpx.URL(guard_url).join(path)
    except (httpx.InvalidURL, ValueError):
        return
    resp = httpx.request(method, url, content=payload, headers=headers, timeout=10)
    _check(resp)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_oip)
def test_fuzzed_inference_documents_from_a_valid_caller_are_json_4xx_or_answers(
    guard_url: str, doc: dict[str, Any]
) -> None:
    raw = json.dumps(doc).encode()  # NaN and Infinity as a hostile client writes them
    headers = {**auth("carol"), "content-type": "application/json"}
    resp = httpx.post(guard_url + INFER, content=raw, headers=headers, timeout=10)
    _check(resp)
    if resp.status_code == 200:
        assert "outputs" in resp.json()
