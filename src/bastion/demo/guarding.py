"""The demo's mitigation step: a guard config from the audit, and a key for the client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bastion.findings import Report
from bastion.guard.plan import plan_from_report, render_plan

__all__ = ["issue_key", "write_guard_config"]


def write_guard_config(report: Report, manifest: Path, workdir: Path, benign: Any) -> Path:
    """The plan from the findings, with detectors fitted on the team's own benign inputs."""
    from bastion.detect.profile import fit_profile

    profile = workdir / "detect-profile.json"
    fit_profile(np.asarray(benign, dtype=np.float32)).save(profile)
    config, answers = plan_from_report(report, workdir, detect_profile=profile)
    config["store"] = {"kind": "sqlite", "path": "guard-state.db"}
    path = workdir / "guard.yaml"
    path.write_text(render_plan(config, answers, str(workdir / "before.json")), encoding="utf-8")
    keys = workdir / "guard-keys.yaml"
    if not keys.exists():
        keys.write_text("keys: []\n", encoding="utf-8")
    return path


def issue_key(workdir: Path, principal: str) -> str:
    """A key for the demo's legitimate client; only its hash goes into the key file."""
    from bastion.guard.policies.auth import new_key

    token, entry = new_key(principal, ["predict"])
    keys = workdir / "guard-keys.yaml"
    data = yaml.safe_load(keys.read_text(encoding="utf-8")) or {}
    data.setdefault("keys", []).append(entry)
    keys.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return token
