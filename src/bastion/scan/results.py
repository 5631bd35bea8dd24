"""From file scans to `Finding`s and a `Report`: the scanner's face to every reporter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bastion.findings import (
    Confidence,
    Finding,
    Location,
    References,
    Report,
    RunInfo,
    Severity,
    Subject,
    SubjectKind,
)
from bastion.scan.rules import RULES, Issue
from bastion.scan.scanner import FileScan

__all__ = ["ANALYSER", "findings_of", "report_of"]

ANALYSER = "scan"
_FIRM = {"S101", "S201", "S202", "S203", "S204", "S205", "S206", "S303", "S501"}
_OWASP = {"S401": ("ML05",)}


def _subject(scan: FileScan, member: str | None) -> Subject:
    return Subject(
        kind=SubjectKind.FILE,
        id=scan.path,
        name=Path(scan.path).name,
        location=Location(path=scan.path),
        member=member,
    )


def _finding(scan: FileScan, issue: Issue) -> Finding:
    rule = RULES[issue.rule]
    evidence = dict(issue.evidence)
    evidence.setdefault("file_verdict", scan.verdict.value)
    evidence.setdefault("file_sha256", scan.sha256)
    return Finding(
        rule_id=rule.id,
        title=rule.title,
        message=issue.message,
        severity=rule.severity,
        confidence=Confidence.HIGH if rule.id in _FIRM else Confidence.MEDIUM,
        analyser=ANALYSER,
        subject=_subject(scan, issue.member),
        evidence=evidence,
        references=References(atlas=rule.atlas, owasp=_OWASP.get(rule.id, ("ML06",)), cwe=rule.cwe),
        mitigations=rule.mitigations,
        key=issue.key,
    )


def _summary(scan: FileScan) -> Finding:
    rule = RULES["S100"]
    counts = Counter(i.rule for i in scan.issues)
    models = [
        {"member": a.member, "format": a.format, "bytes": a.size, "verdict": a.verdict.value}
        for a in scan.artifacts
    ]
    return Finding(
        rule_id=rule.id,
        title=rule.title,
        message=f"verdict {scan.verdict.value}: {len(scan.artifacts)} model artifact(s), "
        f"{len(scan.issues)} issue(s)",
        severity=Severity.INFO,
        confidence=Confidence.HIGH,
        analyser=ANALYSER,
        subject=_subject(scan, None),
        evidence={
            "verdict": scan.verdict.value,
            "bytes": scan.size,
            "sha256": scan.sha256,
            "models": models,
            "issues_by_rule": dict(sorted(counts.items())),
        },
        references=References(atlas=rule.atlas, owasp=("ML06",)),
        key="summary",
    )


def findings_of(scans: Sequence[FileScan]) -> list[Finding]:
    """One summary per file that holds a model or an issue, plus one finding per issue."""
    out: list[Finding] = []
    for scan in scans:
        if scan.artifacts or scan.issues:
            out.append(_summary(scan))
        out.extend(_finding(scan, issue) for issue in scan.issues)
    return out


def report_of(scans: Sequence[FileScan], *, command: str, subject: str) -> Report:
    verdicts = Counter(s.verdict.value for s in scans if s.artifacts or s.issues)
    note = f"scanned {len(scans)} file(s); " + (
        ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())) or "no model artifacts"
    )
    from bastion import __version__

    run = RunInfo(
        version=__version__,
        command=command,
        subject=subject,
        analysers=(ANALYSER,),
        notes=(note,),
        finished=datetime.now(UTC),
    )
    return Report(findings=tuple(findings_of(scans)), run=run).sorted()
