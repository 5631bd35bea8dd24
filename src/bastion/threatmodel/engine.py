"""Manifest → Findings: evaluate every catalogue threat against every subject it applies to.

Findings are declarative evidence (what the manifest says), so their confidence
is medium; probes and attacks later confirm or refute them with measurements.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from bastion import __version__
from bastion.catalogue import Catalogue, Threat, load_catalogue
from bastion.findings import (
    Confidence,
    Finding,
    References,
    Report,
    RunInfo,
    Severity,
    Subject,
    SubjectKind,
)
from bastion.manifest import SystemManifest
from bastion.registry import registry
from bastion.threatmodel.evaluation import evaluate, lookup
from bastion.threatmodel.graph import Node, SystemGraph

__all__ = ["CatalogueRules", "RulePack", "threat_model"]

_IMPACT_SEVERITY = {
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


class RulePack(Protocol):
    """A set of rules over a manifest; third parties register one under `bastion.rules`."""

    def evaluate(
        self, manifest: SystemManifest, graph: SystemGraph, catalogue: Catalogue
    ) -> Iterable[Finding]: ...


class CatalogueRules:
    """The built-in rule pack: each catalogue threat's declarative condition."""

    def evaluate(
        self, manifest: SystemManifest, graph: SystemGraph, catalogue: Catalogue
    ) -> Iterable[Finding]:
        for threat in catalogue.threats:
            for node in _subjects(graph, threat):
                ok, facts = evaluate(threat.when, graph, node)
                if ok:
                    yield _finding(threat, manifest, graph, node, facts)


def _subjects(graph: SystemGraph, threat: Threat) -> list[Node]:
    nodes: list[Node] = []
    kinds = set(threat.applies_to)
    if "system" in kinds:
        nodes.append(graph.system_node())
    if "flow" in kinds:
        nodes += graph.flow_nodes()
    nodes += [n for n in graph.element_nodes() if n.type in kinds]
    return nodes


def _severity(threat: Threat, graph: SystemGraph, node: Node) -> tuple[Severity, str | None]:
    if not threat.escalate_with_impact or node.kind != "element":
        return threat.severity, None
    impacts = [str(lookup(graph, node, "impact"))] if node.type == "decision" else []
    impacts += [str(lookup(graph, d, "impact")) for d in graph.related(node, "decisions")]
    ranked = [_IMPACT_SEVERITY[i] for i in impacts if i in _IMPACT_SEVERITY]
    if not ranked:
        return threat.severity, None
    worst = max(ranked, key=lambda s: s.rank)
    worst_name = worst.value
    return (worst if worst.rank > threat.severity.rank else threat.severity), worst_name


def _render(template: str, graph: SystemGraph, node: Node) -> str:
    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "name":
            return str(getattr(node.obj, "label", None) or node.id)
        value = lookup(graph, node, key)
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)

    return _PLACEHOLDER.sub(sub, template)


def _subject(manifest: SystemManifest, node: Node) -> Subject:
    kind = {"element": SubjectKind.ELEMENT, "flow": SubjectKind.FLOW}.get(
        node.kind, SubjectKind.SYSTEM
    )
    name = getattr(node.obj, "label", None) if node.kind == "element" else None
    location = manifest.location_of(node.id) if node.kind != "system" else manifest.location(())
    return Subject(kind=kind, id=node.id, name=name, location=location)


def _finding(
    threat: Threat,
    manifest: SystemManifest,
    graph: SystemGraph,
    node: Node,
    facts: dict[str, object],
) -> Finding:
    severity, impact = _severity(threat, graph, node)
    evidence: dict[str, object] = {"category": threat.category, "likelihood": threat.likelihood}
    evidence.update({k: v for k, v in sorted(facts.items())})
    if impact is not None:
        evidence["decision_impact"] = impact
    return Finding(
        rule_id=threat.id,
        title=threat.title,
        message=_render(threat.message, graph, node),
        severity=severity,
        confidence=Confidence.MEDIUM,
        analyser="threatmodel",
        subject=_subject(manifest, node),
        evidence=evidence,
        references=References(
            atlas=threat.tags.atlas, owasp=threat.tags.owasp, cwe=threat.tags.cwe
        ),
        mitigations=tuple(m.id for m in threat.mitigations),
    )


def _catalogue_files(manifest: SystemManifest, extra: Iterable[str | Path]) -> tuple[Path, ...]:
    base = Path(manifest.source_path).parent if manifest.source_path else Path.cwd()
    files = [base / p for p in manifest.catalogues]
    files += [Path(p) for p in extra]
    return tuple(files)


def threat_model(manifest: SystemManifest, extra_catalogues: Iterable[str | Path] = ()) -> Report:
    """Evaluate all registered rule packs; accepted risks (assumptions) are left out and counted."""
    catalogue = load_catalogue(_catalogue_files(manifest, extra_catalogues))
    graph = SystemGraph(manifest)
    accepted = {(a.rule, a.element) for a in manifest.assumptions}
    findings: list[Finding] = []
    suppressed = 0
    for _name, factory in registry("rules").items():
        for f in factory().evaluate(manifest, graph, catalogue):
            if (f.rule_id, f.subject.id) in accepted or (f.rule_id, None) in accepted:
                suppressed += 1
                continue
            findings.append(f)
    findings.sort(key=Finding.sort_key)
    run = RunInfo(
        version=__version__,
        command="threats",
        subject=manifest.system.name,
        analysers=("threatmodel",),
        suppressed=suppressed,
    )
    return Report(findings=tuple(findings), run=run, system=system_data(manifest))


def system_data(manifest: SystemManifest) -> dict[str, object]:
    """The manifest as plain data for reporters (diagram), with its source path."""
    data = manifest.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["source"] = manifest.source_path
    return data
