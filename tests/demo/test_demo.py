"""The main job end to end, reduced: the careless system, the audit, the guard, the re-audit."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from bastion.demo.runner import run_demo
from bastion.findings import ChangeStatus


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from threadpoolctl import threadpool_limits

    out = tmp_path_factory.mktemp("demo")
    before_children = {p.pid for p in psutil.Process().children(recursive=True)}
    with threadpool_limits(1):
        result = run_demo(out, quick=True, say=lambda _: None)
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before_children
    return result, left


def test_demo_stops_every_process_it_started(demo) -> None:  # type: ignore[no-untyped-def]
    _, left = demo
    assert left == set()


def test_the_careless_system_is_exposed_with_measured_evidence(demo) -> None:  # type: ignore[no-untyped-def]
    result, _ = demo
    before = {f.rule_id: f for f in result.before.findings}
    assert {"P101", "P103", "P105", "P109", "P110", "T014", "T016"} <= set(before)
    # evasion within the stated success radius: the score-based attack fools most points
    evasion = [before[r] for r in ("A101", "A102")]
    assert all(f.evidence["eps"] > 0 for f in evasion)
    assert max(f.evidence["success_rate"] for f in evasion) >= 0.8, evasion
    assert before["A201"].evidence["fidelity"] >= 0.8
    # ... and the copy owes that to the API: 40 labelled digits alone give far less
    assert before["A201"].evidence["fidelity_gain"] >= 0.1
    scanned = [f for f in result.before.findings if f.analyser == "scan"]
    assert any("leaflet-app.apk" in f.subject.id for f in scanned)


def test_the_guard_resolves_what_it_can_and_says_so(demo) -> None:  # type: ignore[no-untyped-def]
    result, _ = demo
    comparison = result.after.comparison
    assert comparison is not None
    status = {(c.rule_id, c.subject): c.status for c in comparison.changes}
    for rule in ("P101", "P103", "P105", "P110"):
        assert status[(rule, "api")] is ChangeStatus.RESOLVED, rule
    # the attacks that succeeded before are stopped or fail through the guard
    after = [f for f in result.after.findings if f.rule_id in ("A101", "A201")]
    assert all(f.severity.rank <= 1 for f in after), [(f.rule_id, f.severity) for f in after]
    # what a guard cannot fix stays, honestly: the pickle format, the model in the app
    assert status[("T014", "Digit classifier")] is ChangeStatus.UNCHANGED
    assert status[("T016", "Digit classifier")] is ChangeStatus.UNCHANGED


def test_the_report_and_the_guard_config_are_written(demo) -> None:  # type: ignore[no-untyped-def]
    result, _ = demo
    html = result.report.read_text()
    assert "Before and after" in html and "<svg" in html
    data = json.loads((result.workdir / "report.json").read_text())
    assert data["comparison"]["changes"]
    guard = (result.workdir / "guard.yaml").read_text()
    assert "# answers: P103" in guard and "sha256:" in guard
    assert Path(result.workdir / "guard-audit.jsonl").stat().st_size > 0


def test_the_re_audit_attacks_as_fresh_principals(demo) -> None:  # type: ignore[no-untyped-def]
    result, _ = demo
    log = (result.workdir / "guard-audit.jsonl").read_text().splitlines()
    principals = {json.loads(line).get("principal") for line in log}
    # the probes ran as the client; each attack as its own account, so a block earned by
    # the probes cannot stop the attacks by accident
    assert "demo-client" in principals
    assert {p for p in principals if p and p.startswith("demo-attacker-")}
