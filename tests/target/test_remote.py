"""HTTP targets against real loopback servers: exact answers, exact counts, clean errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bastion.errors import BudgetExhausted, EndpointError, TargetError
from bastion.target import Ledger, OutputKind
from bastion.target.http import HttpOptions
from bastion.target.remote import HttpTarget, json_target, oip_target
from bastion.testing import ServerConfig, serve_in_background

Serve = Any  # the `serve` fixture: ServerConfig -> context manager of (url, app)

X = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])


def _target(url: str, config: ServerConfig, **kw: Any) -> HttpTarget:
    options = HttpOptions(api_key=config.api_key, **kw)
    if config.protocol == "oip":
        return oip_target(url, config.model_name, options=options)
    return json_target(url + "/predict", options=options)


@pytest.mark.parametrize("protocol", ["oip", "json"])
def test_scores_as_the_caller_sees_them(serve: Serve, model: Any, protocol: str) -> None:
    config = ServerConfig.vulnerable(protocol)  # type: ignore[arg-type]
    with serve(config) as (url, _):
        target = _target(url, config)
        result = target.query(X)
        target.close()
    assert result.scores is not None
    np.testing.assert_array_equal(result.scores, model.predict_proba(X))  # every digit
    np.testing.assert_array_equal(result.labels, model.predict(X))
    assert target.info().output is OutputKind.SCORES and result.bytes_received > 0


@pytest.mark.parametrize("protocol", ["oip", "json"])
def test_label_only_server_gives_labels_only(serve: Serve, model: Any, protocol: str) -> None:
    config = ServerConfig.hardened(protocol, noise=0.0)  # type: ignore[arg-type]
    with serve(config) as (url, _):
        target = _target(url, config)
        result = target.query(X)
        info = target.info()
        target.close()
    assert result.scores is None and info.output is OutputKind.LABEL
    np.testing.assert_array_equal(result.labels, model.predict(X))
    if protocol == "oip":
        assert info.input_shape == (4,)


def test_decimals_are_those_on_the_wire(serve: Serve) -> None:
    config = ServerConfig.vulnerable("json", decimals=2)
    with serve(config) as (url, _):
        target = _target(url, config)
        scores = target.query(X).scores
        target.close()
    assert scores is not None
    np.testing.assert_array_equal(scores, np.round(scores, 2))


@pytest.mark.parametrize("protocol", ["oip", "json"])
def test_ledger_count_equals_the_server_log(serve: Serve, protocol: str) -> None:
    config = ServerConfig.vulnerable(protocol)  # type: ignore[arg-type]
    with serve(config) as (url, app):
        ledger = Ledger(_target(url, config))
        for size in (1, 3, 2, 3):
            ledger.query(X[:size])
        ledger.close()
        infer_posts = [e for e in app.state.bastion.log if e[0] == "POST"]
    assert ledger.queries == app.state.bastion.inputs == 9
    assert ledger.stats().requests == len(infer_posts) == 4


def test_ledger_retries_429_and_still_matches_the_server(serve: Serve) -> None:
    config = ServerConfig.hardened("json", rate_limit=(3, 1.0), noise=0.0)
    with serve(config) as (url, app):
        ledger = Ledger(_target(url, config), retries=3)
        for _ in range(5):
            ledger.query(X[:1])
        ledger.close()
        log = app.state.bastion.log
    stats = ledger.stats()
    assert stats.retries >= 1 and stats.statuses[429] == stats.retries
    assert stats.requests == len(log) and stats.queries == len(log)
    assert app.state.bastion.inputs == 5  # answered inputs; the 429s were refused


def test_budget_stops_exactly_at_the_server(serve: Serve) -> None:
    config = ServerConfig.vulnerable("oip")
    with serve(config) as (url, app):
        ledger = Ledger(_target(url, config), budget=7)
        with pytest.raises(BudgetExhausted):
            while True:
                ledger.query(X[: min(3, ledger.remaining or 1)])
        ledger.close()
        assert app.state.bastion.inputs == ledger.queries == 7


def test_missing_key_is_a_401_with_a_hint(serve: Serve) -> None:
    config = ServerConfig.hardened("oip")
    with serve(config) as (url, _):
        target = oip_target(url, "iris")
        with pytest.raises(EndpointError) as info:
            target.query(X[:1])
        target.close()
    assert info.value.status == 401 and "--api-key" in str(info.value)


def test_unreachable_endpoint_is_one_clear_error() -> None:
    target = oip_target("http://127.0.0.1:9", "iris", options=HttpOptions(timeout_s=2))
    with pytest.raises(TargetError, match=r"cannot connect to http://127\.0\.0\.1:9"):
        target.query(X[:1])


def test_tls_failure_is_named(serve: Serve) -> None:
    with serve(ServerConfig.vulnerable("json")) as (url, _):
        target = json_target(url.replace("http://", "https://") + "/predict")
        with pytest.raises(TargetError, match="TLS handshake"):
            target.query(X[:1])
        target.close()


def test_non_json_answer_is_named() -> None:
    async def page(request: object) -> HTMLResponse:
        return HTMLResponse("<html>login</html>")

    app = Starlette(routes=[Route("/predict", page, methods=["POST"])])
    with serve_in_background(app) as url:
        target = json_target(url + "/predict")
        with pytest.raises(TargetError, match=r"non-JSON \(text/html"):
            target.query(X[:1])
        target.close()
