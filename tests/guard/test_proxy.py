"""End to end on loopback: a real model server, the guard proxy (and middleware) in front."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from bastion.guard import Guard, load_config
from bastion.guard.adapters.asgi import GuardMiddleware
from bastion.guard.verification import verify_log
from tests.guard.conftest import auth
from tests.guard.servers import ThreadServer, free_port, model_app
from tests.guard.test_policies import borderline_virginica

pytestmark = pytest.mark.network

INFER = "/v2/models/iris/infer"


def oip(x: Any) -> dict[str, Any]:
    arr = np.asarray(x, dtype=np.float32)
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(arr.shape),
                "datatype": "FP32",
                "data": arr.ravel().tolist(),
            }
        ]
    }


def test_unauthenticated_request_is_refused(proxy) -> None:
    base, _ = proxy()
    r = httpx.post(base + INFER, json=oip([[5.1, 3.5, 1.4, 0.2]]))
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_n_plus_first_request_gets_429_while_another_principal_passes(proxy) -> None:
    base, _ = proxy()
    with httpx.Client(base_url=base) as c:
        codes = [
            c.post(INFER, json=oip([[5.1, 3.5, 1.4, 0.2]]), headers=auth("alice")) for _ in range(6)
        ]
        assert [r.status_code for r in codes] == [200] * 5 + [429]
        assert codes[0].headers["ratelimit-remaining"] == "4"
        assert int(codes[5].headers["retry-after"]) >= 1
        assert codes[5].json()["error"] == "rate_limited"
        assert (
            c.post(INFER, json=oip([[5.1, 3.5, 1.4, 0.2]]), headers=auth("bob")).status_code == 200
        )


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "malformed_request"),
        (b'{"inputs": 3}', 400, "malformed_request"),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "STR", "data": [1]}]}',
            400,
            "malformed_request",
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", '
            b'"data": [1, 2, 3]}]}',
            422,
            "invalid_input",
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", '
            b'"data": [1, 2, 3]}]}',
            400,
            "malformed_request",
        ),
        (b"x" * 5000, 413, "payload_too_large"),
        # found by bastion's own input probe through the guard: deep nesting was a 500
        (b"[" * 2000 + b"]" * 2000, 400, "malformed_request"),
    ],
)
def test_malformed_requests_get_a_json_4xx(proxy, body: bytes, status: int, error: str) -> None:
    base, _ = proxy(proxy={"max_body_bytes": 4500})
    r = httpx.post(
        base + INFER, content=body, headers={**auth("alice"), "content-type": "application/json"}
    )
    assert r.status_code == status
    assert r.json()["error"] == error


def test_non_json_media_types_are_refused(proxy) -> None:
    """Also found by the input probe: a text/plain body used to reach the model."""
    base, _ = proxy()
    body = (
        b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", '
        b'"data": [1, 2, 3, 4]}]}'
    )
    for media, status in (
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/json; charset=utf-8", 200),
    ):
        r = httpx.post(base + INFER, content=body, headers={**auth("alice"), "content-type": media})
        assert r.status_code == status, (media, r.text)
        if status == 415:
            assert r.json()["error"] == "unsupported_media_type"


def test_scores_are_reduced_as_configured(proxy, model: Any) -> None:
    base, _ = proxy()
    x = [[6.0, 2.9, 4.5, 1.5]]
    full = model.predict_proba(np.asarray(x))[0]
    r = httpx.post(base + INFER, json=oip(x), headers=auth("alice"))
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert set(outs) == {"label", "top_k_classes", "top_k_scores"}  # no raw scores, no debug
    assert outs["top_k_scores"]["data"] == [round(full.max(), 1)]
    r = httpx.post(base + INFER, json=oip(x), headers=auth("carol"))
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert outs["probabilities"]["data"] == pytest.approx(np.round(full, 2).tolist())


def test_low_confidence_high_impact_lands_in_the_review_queue(
    proxy, model, run_cli, tmp_path
) -> None:
    base, _ = proxy()
    x = borderline_virginica(model)
    with httpx.Client(base_url=base) as c:
        r = c.post(INFER, json=oip(x), headers=auth("alice"))
        assert r.status_code == 202
        case = r.json()["case"]
        assert r.json()["status_url"] == f"/guard/review/{case}"
        assert c.get("/guard/review", headers=auth("alice")).status_code == 403
        listed = c.get("/guard/review", headers=auth("rita")).json()["cases"]
        assert [k["id"] for k in listed] == [case]
        assert listed[0]["model_output"]["labels"] == [2]
        own = c.get(f"/guard/review/{case}", headers=auth("alice")).json()
        assert own == {"id": case, "status": "pending", "resolution": None}
        assert c.get(f"/guard/review/{case}", headers=auth("bob")).status_code == 404
        done = c.post(f"/guard/review/{case}", json={"resolution": "approve"}, headers=auth("rita"))
        assert done.status_code == 200 and done.json()["resolved_by"] == "rita"
        assert c.get(f"/guard/review/{case}", headers=auth("alice")).json()["status"] == (
            "resolved"
        )
    res = run_cli(
        "guard", "review", "list", "--config", str(tmp_path / "guard.yaml"), "--status", "resolved"
    )
    assert res.returncode == 0, res.stderr
    assert case in res.stdout


def test_review_cli_resolves_a_case(proxy, model, run_cli, tmp_path) -> None:
    base, _ = proxy()
    r = httpx.post(base + INFER, json=oip(borderline_virginica(model)), headers=auth("bob"))
    case = r.json()["case"]
    cfg = str(tmp_path / "guard.yaml")
    res = run_cli("guard", "review", "list", "--config", cfg)
    assert case in res.stdout
    res = run_cli("guard", "review", "resolve", "--config", cfg, case, "reject")
    assert res.returncode == 0, res.stderr
    assert '"resolution": "reject"' in res.stdout
    res = run_cli("guard", "review", "resolve", "--config", cfg, "nope", "reject")
    assert res.returncode == 2 and "no review case" in res.stderr


def test_upstream_down_is_502_json(proxy) -> None:
    base, _ = proxy(target=f"http://127.0.0.1:{free_port()}")
    r = httpx.post(base + INFER, json=oip([[5.1, 3.5, 1.4, 0.2]]), headers=auth("alice"))
    assert r.status_code == 502
    assert r.json()["error"] == "upstream_unavailable"
    assert httpx.get(base + "/guard/readyz").status_code == 503
    assert httpx.get(base + "/guard/healthz").status_code == 200


def test_upstream_slow_is_504_json(proxy, model) -> None:
    with ThreadServer(model_app(model, delay_s=1.0)) as slow:
        base, _ = proxy(target=slow, proxy={"timeout_s": 0.3})
        r = httpx.post(base + INFER, json=oip([[5.1, 3.5, 1.4, 0.2]]), headers=auth("alice"))
        assert r.status_code == 504
        assert r.json()["error"] == "upstream_timeout"


def test_hop_by_hop_and_credential_headers_are_not_forwarded(proxy, seen) -> None:
    base, _ = proxy()
    r = httpx.post(
        base + INFER,
        json=oip([[5.1, 3.5, 1.4, 0.2]]),
        headers={
            **auth("alice"),
            "Connection": "keep-alive, x-hop",
            "x-hop": "1",
            "x-trace": "abc",
            "proxy-authorization": "Basic Zm9v",
        },
    )
    assert r.status_code == 200
    assert seen["x-trace"] == "abc" and seen["x-bastion-principal"] == "alice"
    assert not {"authorization", "x-hop", "proxy-authorization"} & set(seen)


def test_readiness_metrics_and_unknown_paths(proxy) -> None:
    base, _ = proxy()
    with httpx.Client(base_url=base) as c:
        assert c.get("/guard/readyz").json() == {"ready": True}
        assert c.get("/v2/health/ready").status_code == 200
        c.post(INFER, json=oip([[5.1, 3.5, 1.4, 0.2]]), headers=auth("alice"))
        metrics = c.get("/metrics").text
        assert "bastion_guard_requests_total" in metrics
        assert "alice" not in metrics
        r = c.get("/admin")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        assert c.get(INFER).status_code == 405


def test_plain_json_protocol(proxy, model) -> None:
    base, _ = proxy(
        model={
            "name": "iris",
            "protocol": "json",
            "classes": ["a", "b", "virginica"],
            "inputs": [
                {"name": "input-0", "shape": [-1, 4], "dtype": "float32", "min": 0, "max": 10}
            ],
        }
    )
    r = httpx.post(
        base + "/predict", json={"instances": [[6.0, 2.9, 4.5, 1.5]]}, headers=auth("carol")
    )
    assert r.status_code == 200
    full = model.predict_proba(np.asarray([[6.0, 2.9, 4.5, 1.5]]))[0]
    assert r.json()["probabilities"] == [pytest.approx(np.round(full, 2).tolist())]
    r = httpx.post(base + "/predict", json={"instances": [["a", 1, 2, 3]]}, headers=auth("carol"))
    assert r.status_code == 400


def test_audit_chain_of_a_proxy_run_verifies(proxy, tmp_path) -> None:
    base, _ = proxy()
    for who in ("alice", "bob", None):
        httpx.post(base + INFER, json=oip([[5.1, 3.5, 1.4, 0.2]]), headers=auth(who) if who else {})
    v = verify_log([tmp_path / "audit.jsonl"])
    assert v.ok and v.records == 4


def test_asgi_middleware_guards_an_existing_app(write_config, model) -> None:
    guard = Guard(load_config(write_config()))
    app = GuardMiddleware(model_app(model), guard)
    with ThreadServer(app) as base, httpx.Client(base_url=base) as c:
        assert c.post(INFER, json=oip([[5.1, 3.5, 1.4, 0.2]])).status_code == 401
        r = c.post(INFER, json=oip([[5.1, 3.5, 1.4, 0.2]]), headers=auth("alice"))
        assert r.status_code == 200
        assert {o["name"] for o in r.json()["outputs"]} == {
            "label",
            "top_k_classes",
            "top_k_scores",
        }
        assert c.get("/v2/health/ready").json() == {"ready": True}  # passes through
    guard.close()


def test_guard_serve_cli_rejects_bad_input(run_cli, write_config) -> None:
    res = run_cli("guard", "serve", "--config", str(write_config()), "--upstream", "ftp://x")
    assert res.returncode == 2 and "not an http(s) URL" in res.stderr
    bad = write_config().parent / "bad.yaml"
    bad.write_text(yaml.safe_dump({"modle": {}}))
    res = run_cli("guard", "serve", "--config", str(bad), "--upstream", "http://127.0.0.1:1")
    assert res.returncode == 2 and f"{bad}:1:1: modle" in res.stderr


def test_sigkill_and_restart_keeps_quota_and_audit_chain(write_config, model, tmp_path) -> None:
    from tests.guard.servers import guard_process

    config = write_config()
    body = oip([[5.1, 3.5, 1.4, 0.2]])
    with ThreadServer(model_app(model)) as upstream:
        with guard_process(config, upstream, kill=True) as base:
            for _ in range(3):
                assert httpx.post(base + INFER, json=body, headers=auth("alice")).status_code == 200
        with guard_process(config, upstream) as base:
            codes = [
                httpx.post(base + INFER, json=body, headers=auth("alice")).status_code
                for _ in range(3)
            ]
    assert codes == [200, 200, 429]  # 5/minute counted across the crash
    v = verify_log([tmp_path / "audit.jsonl"])
    assert v.ok, v.problems
    assert v.records == 2 + 6  # two start records, every decision kept


def test_model_metadata_is_hidden_unless_exposed_then_needs_a_key(proxy) -> None:
    base, _ = proxy()
    assert httpx.get(base + "/v2/models/iris", headers=auth("alice")).status_code == 404
    base, _ = proxy(proxy={"expose_metadata": True})
    assert httpx.get(base + "/v2/models/iris").status_code == 401
    r = httpx.get(base + "/v2/models/iris", headers=auth("alice"))
    assert r.status_code == 200 and r.json()["inputs"][0]["shape"] == [-1, 4]


@pytest.mark.parametrize("server", ["lean", "uvicorn"])
def test_guard_serve_runs_on_either_front_end(write_config, upstream, server: str) -> None:
    from tests.guard.servers import guard_process

    with guard_process(write_config(), upstream, extra=("--server", server)) as base:
        r = httpx.post(base + INFER, json=oip([[5.1, 3.5, 1.4, 0.2]]), headers=auth("alice"))
        assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "4"
        assert httpx.get(base + "/guard/readyz").json() == {"ready": True}
