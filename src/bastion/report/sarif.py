"""SARIF 2.1.0 as GitHub code scanning expects it.

One rule per rule id with `security-severity` (GitHub's severity buckets),
`partialFingerprints` from the finding's fingerprint so alerts survive edits,
and a physical location on the manifest line or the scanned file wherever one
exists (endpoints get a logical location instead).
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from bastion.findings import Finding, Report, Severity
from bastion.report.context import mitigation_title

__all__ = ["render_sarif"]

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


def _rule(f: Finding) -> dict[str, Any]:
    help_lines = [f"{m}: {mitigation_title(m)}" for m in f.mitigations]
    tags = ["security", f.analyser, *f.references.all()]
    return {
        "id": f.rule_id,
        "name": "".join(w.capitalize() for w in f.title.replace("-", " ").split()[:8]),
        "shortDescription": {"text": f.title},
        "fullDescription": {"text": f.title},
        "help": {
            "text": "Mitigations:\n" + "\n".join(help_lines) if help_lines else f.title,
            "markdown": "**Mitigations**\n\n" + "\n".join(f"- {h}" for h in help_lines)
            if help_lines
            else f.title,
        },
        "defaultConfiguration": {"level": _LEVEL[f.severity]},
        "properties": {
            "tags": tags,
            "security-severity": f.severity.security_severity,
            "precision": {"high": "high", "medium": "medium", "low": "low"}[f.confidence.value],
            "problem.severity": "error" if f.severity.rank >= 3 else "warning",
        },
    }


def _artifact(path: str) -> dict[str, Any]:
    p = PurePath(path)
    if p.is_absolute():
        return {"uri": p.as_uri()} if hasattr(p, "as_uri") else {"uri": str(p)}
    return {"uri": p.as_posix(), "uriBaseId": "%SRCROOT%"}


def _locations(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {}
    loc = f.subject.location
    path = loc.path if loc else (f.subject.id if f.subject.kind.value == "file" else None)
    if path:
        physical: dict[str, Any] = {"artifactLocation": _artifact(path)}
        if loc and loc.line:
            region: dict[str, Any] = {"startLine": loc.line}
            if loc.column:
                region["startColumn"] = loc.column
            physical["region"] = region
        out["locations"] = [{"physicalLocation": physical}]
    logical = {"name": f.subject.id, "kind": f.subject.kind.value}
    if f.subject.member:
        logical["fullyQualifiedName"] = f"{f.subject.id}!{f.subject.member}"
    out.setdefault("locations", [{}])
    out["locations"][0]["logicalLocations"] = [logical]
    return out


def render_sarif(report: Report) -> str:
    ordered = report.sorted().findings
    rules: dict[str, dict[str, Any]] = {}
    for f in ordered:
        rules.setdefault(f.rule_id, _rule(f))
    index = {rule_id: i for i, rule_id in enumerate(rules)}
    results = []
    for f in ordered:
        result: dict[str, Any] = {
            "ruleId": f.rule_id,
            "ruleIndex": index[f.rule_id],
            "level": _LEVEL[f.severity],
            "message": {"text": f.message},
            "partialFingerprints": {"bastionFingerprint/v1": f.fingerprint},
            "properties": {
                "severity": f.severity.value,
                "confidence": f.confidence.value,
                "analyser": f.analyser,
                "evidence": f.evidence,
                "mitigations": list(f.mitigations),
            },
        }
        result.update(_locations(f))
        results.append(result)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "bastion",
                "version": report.run.version or "0",
                "rules": list(rules.values()),
            }
        },
        "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "The working directory."}}},
        "results": results,
        "invocations": [
            {
                "executionSuccessful": True,
                "commandLine": f"bastion {report.run.command}".strip(),
                "startTimeUtc": report.run.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ],
    }
    doc = {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2, default=str)
