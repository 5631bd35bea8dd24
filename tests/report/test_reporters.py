"""Reporters are pure functions of a Report: JSON round-trips, SARIF validates, HTML is offline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from bastion.findings import Report
from bastion.manifest import load_manifest, parse_manifest
from bastion.report import render_html, render_json, render_markdown, render_sarif
from bastion.threatmodel import threat_model

ROOT = Path(__file__).resolve().parents[2]
SARIF_SCHEMA = ROOT.parent / "shared" / "data" / "sarif-schema-2.1.0.json"
EXAMPLES = sorted((ROOT / "examples").glob("*/system.yaml"))


@pytest.fixture(scope="module", params=EXAMPLES, ids=lambda p: p.parent.name)
def report(request: pytest.FixtureRequest) -> Report:
    return threat_model(load_manifest(request.param))


def test_json_round_trips(report: Report) -> None:
    text = render_json(report)
    again = Report.from_json(text)
    assert again == report
    assert render_json(again) == text


def test_sarif_validates_against_the_official_schema(report: Report) -> None:
    if not SARIF_SCHEMA.exists():
        pytest.fail(f"SARIF schema missing at {SARIF_SCHEMA} (shared/ must sit beside the repo)")
    schema = json.loads(SARIF_SCHEMA.read_text())
    doc = json.loads(render_sarif(report))
    jsonschema.Draft4Validator(schema).validate(doc)


def test_sarif_meets_code_scanning_expectations(report: Report) -> None:
    run = json.loads(render_sarif(report))["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert len(run["results"]) == len(report.findings)
    for result in run["results"]:
        rule = rules[result["ruleId"]]
        assert float(rule["properties"]["security-severity"]) >= 0
        assert result["partialFingerprints"]["bastionFingerprint/v1"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(
            "system.yaml"
        )
    severities = {r["properties"]["security-severity"] for r in rules.values()}
    assert severities <= {"9.5", "8.0", "5.5", "2.0", "0.0"}


def test_html_is_self_contained_and_has_the_diagram(report: Report) -> None:
    html = render_html(report)
    assert "<svg" in html and 'class="lane"' in html
    # no fetches from anywhere: only the SVG namespace URI may appear
    urls = re.findall(r"""(?:src|href)=["']([^"'#][^"']*)""", html)
    assert urls == [], urls
    for f in report.findings:
        assert f'id="f-{f.fingerprint}"' in html
    assert html.count('class="node ') == len(report.system["elements"])  # type: ignore[index]


def test_html_escapes_manifest_text() -> None:
    text = (
        "system: {name: '<script>alert(1)</script>'}\n"
        "elements:\n  - {id: m, type: model, name: '<img src=x onerror=alert(1)>'}\n"
    )
    html = render_html(threat_model(parse_manifest(text, "x.yaml")))
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;img src=x" in html


def test_markdown_lists_every_finding(report: Report) -> None:
    md = render_markdown(report)
    for f in report.findings:
        assert f"### {f.rule_id} · {f.title}" in md
