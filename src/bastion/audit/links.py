"""Tie what the manifest predicts to what was measured.

A threat-model finding ("scores exposed, no rate limit → extraction") is a
prediction from declarations. When a probe or an attack against the endpoint
serving that model measured the same weakness, the threat carries that
evidence and its severity becomes what was measured (higher or lower than the
declaration's); when the measurement ran
and did not reproduce it, the threat is kept (the declaration still says so)
but its severity drops one level and the refuting measurement is attached.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bastion.findings import Confidence, Finding, Severity
from bastion.manifest import SystemManifest
from bastion.threatmodel.graph import SystemGraph

__all__ = ["LINKS", "dedupe", "link"]

# threat id → measured rule ids that confirm it (probes P1xx, attacks A1xx-A3xx).
LINKS: dict[str, tuple[str, ...]] = {
    "T001": ("A101", "A102", "A103"),
    "T003": ("A102", "P101"),
    "T004": ("A101", "P105"),
    "T005": ("A103",),
    "T006": ("A201", "P101", "P105"),
    "T007": ("P101",),
    "T008": ("A301",),
    "T026": ("P105", "P106"),
    "T027": ("P103", "P104"),
    "T028": ("P110",),
    "T029": ("P109",),
    "T031": ("P107", "P108"),
}
_KEYS = (
    "success_rate",
    "fidelity",
    "auc",
    "tpr_at_1pct_fpr",
    "median_queries",
    "queries",
    "total_queries",
    "output_kind",
    "decimals",
    "sustainable_rate_per_s",
    "sample_size",
    "n",
)
_LOWER = {
    Severity.CRITICAL: Severity.HIGH,
    Severity.HIGH: Severity.MEDIUM,
    Severity.MEDIUM: Severity.LOW,
    Severity.LOW: Severity.LOW,
    Severity.INFO: Severity.INFO,
}


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(f.fingerprint, f)
    return list(seen.values())


def _summary(f: Finding) -> dict[str, Any]:
    picked = {k: f.evidence[k] for k in _KEYS if k in f.evidence}
    return {"rule_id": f.rule_id, "severity": f.severity.value, "title": f.title, **picked}


def _serving(graph: SystemGraph, threat: Finding) -> set[str]:
    """Endpoint element ids whose measurements speak about this threat's subject."""
    sid = threat.subject.id
    if sid not in graph.elements:
        return set()
    node = graph.node(sid)
    if node.type == "endpoint":
        return {sid}
    return {n.id for n in graph.related(node, "endpoints")}


def link(findings: list[Finding], manifest: SystemManifest, measured: set[str]) -> list[Finding]:
    """Attach confirming or refuting measurements to threat findings.

    `measured` holds the endpoint ids that probes or attacks actually reached;
    a threat about a system part nobody measured is left as declared.
    """
    graph = SystemGraph(manifest)
    by_endpoint: dict[str, list[Finding]] = {}
    for f in findings:
        if f.analyser in ("probe", "attack"):
            by_endpoint.setdefault(f.subject.id, []).append(f)
    out: list[Finding] = []
    for f in findings:
        rules = LINKS.get(f.rule_id)
        if f.analyser != "threatmodel" or not rules:
            out.append(f)
            continue
        endpoints = _serving(graph, f) & measured
        if not endpoints:
            out.append(f)
            continue
        related = [m for e in endpoints for m in by_endpoint.get(e, []) if m.rule_id in rules]
        confirming = [m for m in related if m.severity.rank >= Severity.MEDIUM.rank]
        evidence = dict(f.evidence)
        if confirming:
            worst = max((m.severity for m in confirming), key=lambda s: s.rank)
            evidence["confirmed_by"] = [_summary(m) for m in confirming]
            # the measurement decides, both ways: a declared high that an attack reproduced
            # only at medium (say, 20 % success within the radius) is a medium
            severity = worst
            out.append(
                f.model_copy(
                    update={
                        "evidence": evidence,
                        "severity": severity,
                        "confidence": Confidence.HIGH,
                    }
                )
            )
        else:
            evidence["not_confirmed_by"] = [_summary(m) for m in related] or [
                {"checked": sorted(rules), "endpoints": sorted(endpoints), "result": "not found"}
            ]
            out.append(f.model_copy(update={"evidence": evidence, "severity": _LOWER[f.severity]}))
    return out
