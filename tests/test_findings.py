"""The one data model: stable fingerprints, ordering, JSON round trip."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bastion.findings import (
    Finding,
    Location,
    Report,
    Series,
    Severity,
    Subject,
    SubjectKind,
)


def _finding(**kw: object) -> Finding:
    base: dict[str, object] = {
        "rule_id": "P101",
        "title": "t",
        "message": "m",
        "severity": Severity.HIGH,
        "analyser": "probe",
        "subject": Subject(kind=SubjectKind.ENDPOINT, id="http://127.0.0.1:1/v2"),
    }
    base.update(kw)
    return Finding.model_validate(base)


def test_fingerprint_ignores_wording_and_lines_but_not_identity() -> None:
    a = _finding()
    moved = _finding(
        message="other words",
        subject=Subject(
            kind=SubjectKind.ENDPOINT,
            id="http://127.0.0.1:1/v2",
            location=Location(path="x", line=9),
        ),
    )
    assert a.fingerprint == moved.fingerprint
    assert a.fingerprint != _finding(rule_id="P102").fingerprint
    assert a.fingerprint != _finding(key="second").fingerprint


def test_findings_are_frozen() -> None:
    f = _finding()
    with pytest.raises(ValidationError):
        f.severity = Severity.LOW  # type: ignore[misc]


def test_severity_order_and_parsing() -> None:
    assert Severity.CRITICAL.at_least(Severity.HIGH)
    assert not Severity.LOW.at_least(Severity.MEDIUM)
    assert Severity.parse(" High ") is Severity.HIGH
    with pytest.raises(ValueError, match="unknown severity"):
        Severity.parse("severe")


def test_report_sorting_counts_and_threshold() -> None:
    report = Report(
        findings=(_finding(severity=Severity.LOW), _finding(severity=Severity.CRITICAL, key="k"))
    )
    assert [f.severity for f in report.sorted().findings] == [Severity.CRITICAL, Severity.LOW]
    assert report.counts()["critical"] == 1 and report.counts()["low"] == 1
    assert report.worst() is Severity.CRITICAL
    assert len(report.at_least(Severity.MEDIUM)) == 1


def test_report_json_round_trip_with_series_and_evidence() -> None:
    report = Report(
        findings=(_finding(evidence={"queries": 120, "success_rate": 0.93, "ids": ["a", "b"]}),),
        series=(
            Series(name="s", x_label="q", y_label="p", x=(1, 2), y=(0.1, 0.5), sample_size=50),
        ),
    )
    again = Report.from_json(report.to_json())
    assert again == report
    assert again.findings[0].fingerprint == report.findings[0].fingerprint
