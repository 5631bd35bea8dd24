"""From an audit report to a guard config: each policy says which findings it answers.

`bastion guard init --from-report REPORT.json` starts from what the manifest
declares (`starter_config`) and then lets the measured findings decide: which
policies are needed, how tight the quota must be for the extraction curve
that was measured, whether the artifact may be pinned (never a file the scan
called malicious). Every policy block is preceded by a comment naming the
findings it answers, so a reviewer can trace each setting to its evidence.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from bastion.detect.configurations import DOMAIN_CONFIGURATION, detectors
from bastion.errors import UsageError
from bastion.findings import Finding, Report
from bastion.manifest import Model, SystemManifest, load_manifest
from bastion.manifest.system import SystemManifest as _Manifest

__all__ = ["ANSWERS", "plan_from_report", "render_plan"]

# policy kind → finding rule ids it answers (probes P, attacks A, threats T, scan S).
ANSWERS: dict[str, tuple[str, ...]] = {
    "api_key": ("P103", "P104", "P120", "T027"),
    "quota": ("P105", "P106", "P121", "T004", "T006", "T026", "A101", "A201"),
    "input_validation": ("P107", "P108", "P109", "P124", "T029", "T031"),
    "detection": ("A101", "A102", "A103", "T001", "T003", "T025"),
    "output_minimisation": (
        "P101",
        "P102",
        "P122",
        "T003",
        "T006",
        "T007",
        "T008",
        "A102",
        "A201",
        "A301",
    ),
    "decision": ("T018", "T019"),
}


def _manifest_of(report: Report) -> SystemManifest:
    if not report.system:
        raise UsageError(
            "the report carries no system manifest",
            hint="write it with `bastion audit SYSTEM.yaml -f json`",
        )
    source = report.system.get("source")
    if source and Path(source).exists():
        return load_manifest(source)
    data = {k: v for k, v in report.system.items() if k != "source"}
    return _Manifest.model_validate(data)


def _extraction_queries(findings: list[Finding]) -> int | None:
    """Queries the measured extraction needed; the quota must stay well below it."""
    needed = [
        int(f.evidence["total_queries"])
        for f in findings
        if f.rule_id == "A201" and isinstance(f.evidence.get("total_queries"), int | float)
    ]
    return min(needed) if needed else None


def _pin(manifest: SystemManifest, findings: list[Finding], out_dir: Path) -> dict[str, Any] | None:
    """Pin the served artifact's digest unless the scan found it unsafe."""
    if manifest.source_path is None:
        return None
    base = Path(manifest.source_path).parent
    for model in manifest.of_type("model"):
        if not isinstance(model, Model) or model.artifact is None or not model.artifact.path:
            continue
        path = (base / model.artifact.path).resolve()
        unsafe = [
            f
            for f in findings
            if f.analyser == "scan" and f.severity.rank >= 3 and path.name in f.subject.id
        ]
        if unsafe or not path.is_file():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        import os

        return {"path": os.path.relpath(path, out_dir.resolve()), "sha256": digest}
    return None


def _detectors(profile: Path, out_dir: Path, manifest: SystemManifest) -> list[dict[str, Any]]:
    """Similarity (query provenance) and extraction detectors over a benign profile."""
    import os

    image = any(
        isinstance(m, Model) and m.input.domain == "image" for m in manifest.of_type("model")
    )
    rel = os.path.relpath(profile.resolve(), out_dir.resolve())
    # the configuration `bastion detect eval` measures for the model's input
    return detectors(DOMAIN_CONFIGURATION["image" if image else "tabular"], rel)


def plan_from_report(
    report: Report,
    out_dir: Path,
    endpoint_id: str | None = None,
    detect_profile: Path | None = None,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The config, and for each policy kind the findings (rule: title) it answers."""
    from bastion.guard.policies.detection import GRADED_ACTIONS
    from bastion.guard.starter import starter_config

    manifest = _manifest_of(report)
    config = starter_config(manifest, out_dir, endpoint_id)
    findings = list(report.findings)
    present = {f.rule_id: f for f in findings}
    answers: dict[str, list[str]] = {}
    for kind, rules in ANSWERS.items():
        hits = sorted({f"{r} {present[r].title}" for r in rules if r in present})
        if hits:
            answers[kind] = hits
    policies: list[dict[str, Any]] = config["policies"]
    copy_needs = _extraction_queries(findings)
    for policy in policies:
        if policy["kind"] == "quota" and copy_needs:
            per_day = max(50, copy_needs // 4)
            policy["per_principal"] = [p for p in policy["per_principal"] if "/day" not in p]
            policy["per_principal"].append(f"{per_day}/day")
            answers.setdefault("quota", []).append(
                f"daily quota = 1/4 of the {copy_needs} queries the measured extraction needed"
            )
        if policy["kind"] == "detection" and detect_profile is not None:
            policy["detectors"] = _detectors(detect_profile, out_dir, manifest)
            # the graded response `bastion detect eval` measures
            policy["actions"] = [dict(a) for a in GRADED_ACTIONS]
    kinds = {p["kind"] for p in policies}
    for kind in list(answers):
        if kind not in kinds:
            answers.pop(kind)
    if config["model"].get("protocol") == "oip":
        # OIP clients read the model's metadata; the guard serves a minimal copy of it
        # to authenticated callers and never the upstream's own (versions, paths).
        config.setdefault("proxy", {})["expose_metadata"] = True
        leaks = sorted({f"{r} {present[r].title}" for r in ("P110", "T028") if r in present})
        answers["proxy"] = leaks or ["OIP clients need the model's input schema"]
    pin = _pin(manifest, findings, out_dir)
    if pin is not None and "artifact" not in config["model"]:
        config["model"]["artifact"] = pin
        answers["model"] = sorted(
            {f"{f.rule_id} {f.title}" for f in findings if f.rule_id in ("T015", "T014")}
        ) or ["start-up integrity check of the served artifact"]
    return config, answers


def render_plan(config: dict[str, Any], answers: dict[str, list[str]], source: str) -> str:
    lines = [
        f"# bastion guard config, generated from the findings in {source}.",
        "# Each policy names the findings it answers; review every value.",
        "# Add API keys with `bastion guard keys new` to the keys file.",
    ]
    for key, value in config.items():
        if key == "policies":
            continue
        if key == "model" and "model" in answers:
            lines.append("# model.artifact answers: " + "; ".join(answers["model"]))
        if key == "proxy" and "proxy" in answers:
            lines.append("# proxy.expose_metadata answers: " + "; ".join(answers["proxy"]))
        lines.append(yaml.safe_dump({key: value}, sort_keys=False).rstrip())
    lines.append("policies:")
    for policy in config["policies"]:
        why = answers.get(policy["kind"])
        if why:
            lines.append(f"  # answers: {'; '.join(why)}")
        else:
            lines.append("  # baseline from the manifest")
        block = yaml.safe_dump([policy], sort_keys=False).rstrip().splitlines()
        lines += ["  " + line for line in block]
    return "\n".join(lines) + "\n"
