"""What the human-facing reporters share: mitigation titles, ordering, grouping."""

from __future__ import annotations

from collections import defaultdict

from bastion.catalogue import builtin_catalogue
from bastion.findings import Finding, Report, Severity

__all__ = ["by_subject", "likelihood", "mitigation_title", "risk_matrix", "worst_by_subject"]


def mitigation_title(mitigation_id: str) -> str:
    try:
        return builtin_catalogue().mitigation(mitigation_id).title
    except KeyError:
        return mitigation_id


def by_subject(report: Report) -> dict[str, list[Finding]]:
    groups: dict[str, list[Finding]] = defaultdict(list)
    for f in report.sorted().findings:
        groups[f.subject.id].append(f)
    return dict(groups)


def worst_by_subject(report: Report) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for subject, findings in by_subject(report).items():
        worst: Severity = max((f.severity for f in findings), key=lambda s: s.rank)
        out[subject] = (worst.value, len(findings))
    return out


def likelihood(f: Finding) -> str:
    """Declared by catalogue threats; for measured findings, confidence stands in."""
    declared = f.evidence.get("likelihood")
    if declared in ("low", "medium", "high"):
        return str(declared)
    return f.confidence.value


def risk_matrix(report: Report) -> dict[str, dict[str, int]]:
    """severity → likelihood → count, for the executive summary."""
    matrix = {s.value: {"high": 0, "medium": 0, "low": 0} for s in Severity}
    for f in report.findings:
        matrix[f.severity.value][likelihood(f)] += 1
    return matrix
