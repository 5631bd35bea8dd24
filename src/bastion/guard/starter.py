"""`bastion guard init SYSTEM.yaml`: a sensible first guard.yaml from the system manifest.

What the manifest declares becomes policy: the model's input schema becomes
input validation, the declared rate limit a per-principal quota, the output
granularity (coarsened further when the model drives a high-impact decision)
the output policy, a declared fallback rule or human review the decision
policy, and the artifact's pinned digest the start-up integrity check.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bastion.errors import UsageError
from bastion.manifest import Decision, Endpoint, Impact, Model, SystemManifest

__all__ = ["render", "starter_config"]

_HIGH = {Impact.HIGH, Impact.CRITICAL}


def _pick_endpoint(manifest: SystemManifest, endpoint_id: str | None) -> Endpoint:
    endpoints: list[Endpoint] = manifest.of_type("endpoint")
    if endpoint_id is not None:
        for ep in endpoints:
            if ep.id == endpoint_id:
                return ep
        raise UsageError(
            f"no endpoint {endpoint_id!r} in the manifest",
            hint=f"endpoints: {', '.join(e.id for e in endpoints) or 'none'}",
        )
    if len(endpoints) != 1:
        raise UsageError(
            f"the manifest has {len(endpoints)} endpoints; say which to guard with --endpoint",
            hint=f"endpoints: {', '.join(e.id for e in endpoints) or 'none'}",
        )
    return endpoints[0]


def starter_config(
    manifest: SystemManifest, out_dir: Path, endpoint_id: str | None = None
) -> dict[str, Any]:
    ep = _pick_endpoint(manifest, endpoint_id)
    model: Model | None = None
    if ep.model:
        found = manifest.element(ep.model)
        model = found if isinstance(found, Model) else None
    decisions = [
        d
        for d in manifest.of_type("decision")
        if isinstance(d, Decision) and model is not None and model.id in d.driven_by
    ]
    high = [d for d in decisions if d.impact in _HIGH]

    spec: dict[str, Any] = {
        "name": ep.model_name or (model.id if model else ep.id),
        "protocol": ep.protocol,
    }
    if model is not None:
        if model.version:
            spec["version"] = model.version
        inp = model.input
        entry: dict[str, Any] = {
            "name": "input-0",
            "shape": [-1, *(inp.shape or [])] if inp.shape else [-1, -1],
            "dtype": inp.dtype or "float32",
        }
        if inp.min is not None:
            entry["min"] = inp.min
        if inp.max is not None:
            entry["max"] = inp.max
        spec["inputs"] = [entry]
        art = model.artifact
        if art is not None and art.path and art.sha256:
            base = Path(manifest.source_path).parent if manifest.source_path else Path.cwd()
            path = os.path.relpath((base / art.path).resolve(), out_dir.resolve())
            spec["artifact"] = {"path": path, "sha256": art.sha256.lower()}

    policies: list[dict[str, Any]] = [
        {"kind": "api_key", "keys_file": "guard-keys.yaml"},
        {
            "kind": "quota",
            "per_principal": [ep.controls.rate_limit or "60/minute", "10000/day"],
            "global": ["200/second"],
        },
        {"kind": "input_validation", "max_bytes": 1 << 20, "max_rows": 64},
        {
            "kind": "detection",
            "detectors": [],
            "actions": [{"at": 5, "action": "label_only"}, {"at": 20, "action": "block"}],
        },
    ]
    if high:
        fallback = next((d for d in high if d.fallback), None)
        rule: dict[str, Any] = {"kind": "decision", "confidence_below": 0.6, "match": "any"}
        if fallback is not None:
            rule.update(route="fallback", fallback={"label": 0})
        else:
            rule["route"] = "review"
        policies.append(rule)
    out = model.output if model is not None else None
    if high or out is None or out.kind == "label":
        default: dict[str, Any] = {"mode": "label"}
    else:
        default = {"mode": "top_k", "k": out.top_k or 1, "decimals": min(out.decimals or 2, 2)}
    policies.append(
        {
            "kind": "output_minimisation",
            "default": default,
            "scopes": {"scores": {"mode": "scores", "decimals": 2}},
        }
    )

    config: dict[str, Any] = {
        "version": 1,
        "model": spec,
        "store": {"kind": "sqlite", "path": "guard-state.db"},
        "audit": {"path": "guard-audit.jsonl"},
        "policies": policies,
    }
    if ep.url:
        parts = urlsplit(ep.url)
        config["proxy"] = {"upstream": f"{parts.scheme}://{parts.netloc}"}
        if ep.protocol == "json" and parts.path:
            config["proxy"]["predict_paths"] = [parts.path]
    return config


def render(config: dict[str, Any], manifest_path: str, high: bool) -> str:
    head = (
        f"# bastion guard config, generated from {manifest_path}.\n"
        "# Review every value; add keys with `bastion guard keys new`.\n"
    )
    if high:
        head += "# The model drives a high-impact decision: answers are labels only.\n"
    return head + yaml.safe_dump(config, sort_keys=False)
