"""Before/after comparison on real threat-model reports of a system and its mitigated variant."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from bastion.compare import compare, match_key
from bastion.findings import ChangeStatus, Finding, Severity, Subject, SubjectKind
from bastion.manifest import parse_manifest
from bastion.threatmodel import threat_model
from tests.threatmodel.patching import apply

ROOT = Path(__file__).resolve().parents[1]
FRAUD = yaml.safe_load((ROOT / "examples" / "fraud-scoring" / "system.yaml").read_text())
MITIGATION = {
    "set": {
        "elements.score_api.controls.rate_limit": "100/minute",  # resolves T006, T026
        "elements.decline_decision.impact": "high",  # critical → high for escalated threats
    },
    "add": {"elements": [{"id": "fs", "type": "feature_store", "user_writable": True}]},  # new
}


def _report(doc: dict) -> object:  # type: ignore[type-arg]
    return threat_model(parse_manifest(yaml.safe_dump(doc), "system.yaml"))


def test_statuses_follow_the_change() -> None:
    result = compare(_report(FRAUD), _report(apply(FRAUD, MITIGATION)))  # type: ignore[arg-type]
    assert result.comparison is not None
    status = {(c.rule_id, c.subject): c.status for c in result.comparison.changes}
    assert status[("T006", "Fraud gradient-boosting model")] is ChangeStatus.RESOLVED
    assert status[("T026", "Partner scoring API")] is ChangeStatus.RESOLVED
    assert status[("T001", "Fraud gradient-boosting model")] is ChangeStatus.REDUCED
    assert status[("T033", "fs")] is ChangeStatus.NEW
    assert status[("T014", "Fraud gradient-boosting model")] is ChangeStatus.UNCHANGED
    reduced = next(c for c in result.comparison.changes if c.rule_id == "T001")
    assert (reduced.before, reduced.after) == (Severity.CRITICAL, Severity.HIGH)
    assert reduced.deltas["decision_impact"] == ("critical", "high")


def test_endpoints_match_across_addresses() -> None:
    def finding(url: str) -> Finding:
        return Finding(
            rule_id="P101",
            title="t",
            message="m",
            severity=Severity.HIGH,
            analyser="probe",
            subject=Subject(kind=SubjectKind.ENDPOINT, id=url),
        )

    direct = finding("http://127.0.0.1:8001/v2/models/m/infer")
    guarded = finding("http://127.0.0.1:9002/v2/models/m/infer")
    assert match_key(direct) == match_key(guarded)


def test_cli_compare_and_bad_input(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    src = tmp_path / "system.yaml"
    src.write_text(yaml.safe_dump(FRAUD))
    assert (
        run_cli(
            "threats", str(src), "-f", "json", "-o", str(before), "--fail-on", "never"
        ).returncode
        == 0
    )
    src.write_text(yaml.safe_dump(apply(FRAUD, MITIGATION)))
    assert (
        run_cli(
            "threats", str(src), "-f", "json", "-o", str(after), "--fail-on", "never"
        ).returncode
        == 0
    )
    proc = run_cli("compare", str(before), str(after), "-f", "json")
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout)["comparison"]
    assert any(c["status"] == "resolved" for c in counts["changes"])
    md = run_cli("compare", str(before), str(after)).stdout
    assert "## Before and after" in md and "| resolved | T006 |" in md
    bad = tmp_path / "bad.json"
    bad.write_text('{"findings": 3}')
    proc = run_cli("compare", str(bad), str(after))
    assert proc.returncode == 2 and "not a bastion JSON report" in proc.stderr
