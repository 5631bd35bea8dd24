"""`bastion guard init` turns a manifest's declarations into a guard config that loads."""

from __future__ import annotations

from pathlib import Path

import yaml

from bastion.guard.config import load_config
from bastion.guard.policy import GuardEnv, build_policies
from bastion.guard.stores.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[2]


def test_init_from_the_fraud_example(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "guard.yaml"
    res = run_cli("guard", "init", str(ROOT / "examples/fraud-scoring/system.yaml"), "-o", str(out))
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load(out.read_text())
    assert cfg["model"]["name"] == "fraud" and cfg["model"]["protocol"] == "oip"
    assert cfg["model"]["inputs"][0]["shape"] == [-1, 30]
    assert cfg["model"]["artifact"]["sha256"].startswith("3b1f0c3e")
    assert cfg["proxy"]["upstream"] == "https://api.riskrank.example"
    kinds = [p["kind"] for p in cfg["policies"]]
    assert kinds.index("decision") < kinds.index("output_minimisation")
    # the model drives a critical auto-decline: callers get labels only
    assert cfg["policies"][-1]["default"] == {"mode": "label"}
    config = load_config(out)  # validates, with the key file written beside it
    policies = build_policies(GuardEnv(config, MemoryStore()))
    assert [p.name for p in policies] == kinds
    again = run_cli(
        "guard", "init", str(ROOT / "examples/fraud-scoring/system.yaml"), "-o", str(out)
    )
    assert again.returncode == 2 and "--force" in again.stderr


def test_init_needs_an_endpoint_choice_when_there_are_several(run_cli, tmp_path: Path) -> None:
    manifests = sorted((ROOT / "examples").glob("*/system.yaml"))
    for m in manifests:
        res = run_cli("guard", "init", str(m), "-o", str(tmp_path / m.parent.name / "g.yaml"))
        assert res.returncode in (0, 2), res.stderr
        assert "Traceback" not in res.stderr
        if res.returncode == 2:
            assert "--endpoint" in res.stderr
