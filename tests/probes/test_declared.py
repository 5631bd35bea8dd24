"""Declared vs observed: a control on paper that the endpoint does not enforce is a finding."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.probes import DeclaredControls, probe_endpoint
from bastion.testing import ServerConfig

ALL_DECLARED = DeclaredControls(
    auth=True, rate_limit="20/minute", output_minimisation=True, input_validation=True
)


def test_vulnerable_server_contradicts_every_declaration(serve: Any, endpoint_for: Any) -> None:
    config = ServerConfig.vulnerable("oip")
    with serve(config) as (url, _):
        run = probe_endpoint(endpoint_for(url, config, ALL_DECLARED))
    found = {f.rule_id: f for f in run.findings if f.rule_id.startswith("P12")}
    assert set(found) == {"P120", "P121", "P122", "P123"}
    rate = found["P121"]
    assert rate.severity == "high" and rate.evidence["declared"] == "20/minute"
    # The burst was sized to exceed one declared window, and all of it went through.
    assert rate.evidence["measured"]["accepted"] == 40 > 20
    assert "never limited" in rate.evidence["observed"]
    assert found["P122"].evidence["measured"]["output_kind"] == "scores"


def test_declared_rate_limit_alone_is_checked(serve: Any, endpoint_for: Any) -> None:
    config = ServerConfig.vulnerable("json")
    declared = DeclaredControls(rate_limit="50/minute")
    with serve(config) as (url, app):
        run = probe_endpoint(endpoint_for(url, config, declared), names=["rate_limit", "declared"])
        assert app.state.bastion.requests == 55  # allowance + 5, no more
    assert [f.rule_id for f in run.findings] == ["P105", "P121"]


@pytest.mark.parametrize("protocol", ["oip", "json"])
def test_hardened_server_keeps_its_declarations(
    serve: Any, endpoint_for: Any, protocol: str
) -> None:
    config = ServerConfig.hardened(protocol)  # type: ignore[arg-type]
    declared = DeclaredControls(
        auth=True, rate_limit="30/s", output_minimisation=True, input_validation=True
    )
    with serve(config) as (url, _):
        run = probe_endpoint(endpoint_for(url, config, declared))
    assert run.findings == []
