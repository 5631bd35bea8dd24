"""Probes are fenced: bounded in requests and time, and never leave the given origin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bastion.errors import TargetError, UsageError
from bastion.findings import Finding
from bastion.probes import Endpoint, ProbeSession, ProbeSettings, probe_endpoint
from bastion.probes.base import BoundReached
from bastion.target import HttpOptions
from bastion.testing import ServerConfig


class _Greedy:
    """A misbehaving probe that tries to send far more than its bound."""

    name = "greedy"
    max_requests = 3

    def run(self, session: ProbeSession) -> Iterator[Finding]:
        for _ in range(100):
            session.send("GET", session.endpoint.origin + "/health")
        yield from ()


class _Wanderer:
    name = "wanderer"
    max_requests = 5

    def __init__(self, elsewhere: str) -> None:
        self.elsewhere = elsewhere

    def run(self, session: ProbeSession) -> Iterator[Finding]:
        session.send("GET", self.elsewhere + "/health")
        yield from ()


def test_a_probe_is_stopped_at_its_bound(serve: Any, endpoint_for: Any) -> None:
    config = ServerConfig.vulnerable("json")
    with serve(config) as (url, app):
        run = probe_endpoint(endpoint_for(url, config), probes=[_Greedy()])
        assert app.state.bastion.requests == 3
    assert run.requests == {"greedy": 3} and "bound 3" in run.stopped["greedy"]


def test_a_probe_cannot_reach_another_server(serve: Any, endpoint_for: Any) -> None:
    config = ServerConfig.vulnerable("json")
    with serve(config) as (url, app), serve(config) as (decoy_url, decoy):
        with pytest.raises(UsageError, match="tried to leave"):
            probe_endpoint(endpoint_for(url, config), probes=[_Wanderer(decoy_url)])
        full = probe_endpoint(endpoint_for(url, config))
        assert decoy.state.bastion.requests == 0
        assert app.state.bastion.requests == len(full.sent) > 0


def test_time_bound_stops_a_probe(serve: Any, endpoint_for: Any) -> None:
    config = ServerConfig.vulnerable("json")
    settings = ProbeSettings(probe_seconds=0.0)
    with serve(config) as (url, app):
        session = ProbeSession(endpoint_for(url, config), settings)
        session.begin(_Greedy())
        with pytest.raises(BoundReached, match="time bound"):
            session.send("GET", url + "/health")
        session.close()
        assert app.state.bastion.requests == 0


def test_unreachable_endpoint_is_a_target_error() -> None:
    endpoint = Endpoint(
        "http://127.0.0.1:9/predict", "json", input_shape=(4,), options=HttpOptions(timeout_s=2)
    )
    with pytest.raises(TargetError, match="cannot connect"):
        probe_endpoint(endpoint)


def test_endpoint_needs_a_sane_url_and_model() -> None:
    with pytest.raises(UsageError, match="http"):
        Endpoint("ftp://x/y", "json")
    with pytest.raises(UsageError, match="model name"):
        Endpoint("http://127.0.0.1:1", "oip")
