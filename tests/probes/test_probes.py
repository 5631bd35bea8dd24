"""Every probe fires on the vulnerable server and stays quiet on the hardened one.

One full probe run per (protocol, server kind), shared by the module; the
assertions then go probe by probe, on measured evidence.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bastion.probes import ProbeRun, load_probes, probe_endpoint
from bastion.testing import ServerConfig

PROTOCOLS = ("oip", "json")
# probe name -> the rule ids it must raise against the vulnerable server
EXPECTED = {
    "output": {"P101", "P102"},
    "auth": {"P103"},
    "inputs": {"P107", "P108"},
    "errors": {"P109"},
    "metadata": {"P110"},
    "determinism": {"P111"},
    "rate_limit": {"P105"},
}


@pytest.fixture(scope="module")
def runs(serve: Any, endpoint_for: Any) -> Iterator[dict[tuple[str, str], tuple[ProbeRun, Any]]]:
    out: dict[tuple[str, str], tuple[ProbeRun, Any]] = {}
    for protocol in PROTOCOLS:
        for kind in ("vulnerable", "hardened"):
            config = getattr(ServerConfig, kind)(protocol)
            with serve(config) as (url, app):
                run = probe_endpoint(endpoint_for(url, config))
                out[(protocol, kind)] = (run, app.state.bastion)
    yield out


def _rules(run: ProbeRun, probe: str) -> set[str]:
    return {f.rule_id for f in run.findings if f.evidence["probe"] == probe}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("probe", sorted(EXPECTED))
def test_probe_fires_on_vulnerable_only(runs: dict[Any, Any], protocol: str, probe: str) -> None:
    vulnerable, _ = runs[(protocol, "vulnerable")]
    hardened, _ = runs[(protocol, "hardened")]
    assert _rules(vulnerable, probe) == EXPECTED[probe]
    assert _rules(hardened, probe) == set()
    assert not vulnerable.stopped and not hardened.stopped


def _finding(run: ProbeRun, rule: str) -> Any:
    return next(f for f in run.findings if f.rule_id == rule)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_evidence_is_measured(runs: dict[Any, Any], protocol: str) -> None:
    vulnerable, _ = runs[(protocol, "vulnerable")]
    out = _finding(vulnerable, "P101")
    assert out.evidence["output_kind"] == "scores" and out.evidence["decimals"] >= 10
    assert out.evidence["scores_sum_to_one"] is True and out.evidence["classes_returned"] == 3
    assert "model_version" in _finding(vulnerable, "P102").evidence["extra_fields"]
    inputs = _finding(vulnerable, "P108").evidence
    assert {"nan", "wrong_shape", "truncated_json"} <= set(inputs["broken"])
    assert "out_of_range" in _finding(vulnerable, "P107").evidence["accepted"]
    assert {"stack_trace", "version", "file_path"} <= set(
        _finding(vulnerable, "P109").evidence["leak_kinds"]
    )
    assert "internal_host" in _finding(vulnerable, "P110").evidence["leak_kinds"]
    rate = _finding(vulnerable, "P105").evidence
    assert rate["accepted"] == rate["burst_sent"] == 40 and rate["sustainable_rate_per_s"] > 10
    assert rate["time_for_attack_s"] == pytest.approx(10_000 / rate["sustainable_rate_per_s"], 0.01)
    for f in vulnerable.findings:
        assert f.analyser == "probe" and f.subject.kind == "endpoint"
        assert f.subject.id.startswith("http://127.0.0.1:") and f.references.all()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_hardened_observations_show_the_controls(runs: dict[Any, Any], protocol: str) -> None:
    seen = runs[(protocol, "hardened")][0].observations
    assert seen["auth"]["required"] is True
    assert seen["output"]["output_kind"] == "label"
    assert seen["inputs"]["validated"] is True
    assert seen["rate_limit"]["limited"] is True and seen["rate_limit"]["retry_after_s"] > 0
    assert seen["determinism"]["deterministic"] is False


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", ["vulnerable", "hardened"])
def test_probes_stay_in_bounds_and_on_the_given_url(
    runs: dict[Any, Any], protocol: str, kind: str
) -> None:
    run, state = runs[(protocol, kind)]
    bounds = {p.name: p.max_requests for p in load_probes()}
    for name, used in run.requests.items():
        assert used <= bounds[name], name
    # The server saw exactly what the probes sent, and only on its own host:port.
    assert state.requests == len(run.sent) == sum(run.requests.values())
    origin = run.endpoint.origin
    assert all(url.startswith(origin + "/") for _, url in run.sent)
    assert state.hosts == {origin.removeprefix("http://")}
