"""`bastion campaign`: many systems, one summary report, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bastion.campaign.systems import SystemTask
from bastion.testing import ServerConfig, iris_model, model_app, serve_in_background
from bastion.testing.manifests import iris_service_manifest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*/system.yaml"))


def _table(report: dict[str, Any]) -> list[str]:
    notes: list[str] = report["run"]["notes"]
    start = next(i for i, n in enumerate(notes) if n.startswith("system "))
    return notes[start + 1 : start + 1 + sum(1 for n in notes if n.endswith("system.yaml"))]


def test_campaign_over_the_examples_holds_every_systems_findings(run_cli: Any) -> None:
    done = run_cli("campaign", *EXAMPLES, "--no-probe", "--workers", "2", "-f", "json")
    assert done.returncode == 1, done.stderr  # the examples have high findings
    report = json.loads(done.stdout)
    # each system on its own, by the same per-system function (the audit, once installed)
    single = [
        json.loads(SystemTask(p, probe=False)().report.model_dump_json(by_alias=True))
        for p in EXAMPLES
    ]
    assert len(report["findings"]) == sum(len(s["findings"]) for s in single)
    assert {f["fingerprint"] for f in report["findings"]} == {
        f["fingerprint"] for s in single for f in s["findings"]
    }
    rows = _table(report)
    assert len(rows) == len(EXAMPLES)
    for row, one in zip(rows, single, strict=True):
        assert row.startswith(one["run"]["subject"])
        assert row.split()[len(one["run"]["subject"].split())] == str(len(one["findings"]))
    assert report["run"]["command"] == "campaign"
    assert "local executor (2 workers)" in report["run"]["notes"][-1]


def test_campaign_probes_a_live_endpoint_beside_a_paper_only_system(
    run_cli: Any, tmp_path: Path
) -> None:
    live = tmp_path / "live.yaml"
    app = model_app(iris_model(), ServerConfig.vulnerable("oip"))
    with serve_in_background(app) as url:
        live.write_text(iris_service_manifest(url))
        done = run_cli("campaign", str(live), EXAMPLES[0], "-f", "json", "--fail-on", "never")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    by_rule = {(f["rule_id"][0], f["subject"]["id"]) for f in report["findings"]}
    assert ("P", "iris_api") in by_rule, "the live endpoint was probed"
    assert any(kind == "T" and sid != "iris_api" for kind, sid in by_rule)
    assert any(n.startswith("Iris service") for n in _table(report))
    # the example's endpoint does not resolve: its threats stay, and a note says why
    notes = report["run"]["notes"]
    assert any("not probed" in n or "live stages not run" in n for n in notes)


def test_campaign_stops_on_an_invalid_manifest_before_any_work(
    run_cli: Any, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nsystem: {name: x}\nelements:\n  - id: a\n    type: nonsense\n")
    done = run_cli("campaign", EXAMPLES[0], str(bad))
    assert done.returncode == 2
    assert "bad.yaml" in done.stderr and "Traceback" not in done.stderr
    assert run_cli("campaign", EXAMPLES[0], "--executor", "dask").returncode == 2
