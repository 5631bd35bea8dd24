"""`bastion scan/bom/sign/verify/keygen` as a user runs them: formats, exit codes, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pickle_asm import ZipSpec

from conftest import findings

Cli = Callable[..., tuple[int, str, str]]


def test_malicious_member_of_a_bundle_is_reported_with_its_path(
    cli: Cli, tmp_path: Path, evil_pickle: bytes
) -> None:
    apk = tmp_path / "app.apk"
    apk.write_bytes(
        ZipSpec()
        .add("AndroidManifest.xml", b"<m/>")
        .add("assets/m.tflite.bin", evil_pickle)
        .build()
    )
    code, out, err = cli("scan", str(apk), "--format", "json")
    assert code == 1
    got = {(f["rule_id"], f["subject"]["member"]) for f in findings(out)}
    assert ("S101", "assets/m.tflite.bin") in got
    assert ("S401", "assets/m.tflite.bin") in got
    assert all(f["analyser"] == "scan" and f["subject"]["kind"] == "file" for f in findings(out))
    assert "malicious" in err


def test_clean_model_exits_zero_and_reports_its_verdict(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.arange(4))
    code, out, _ = cli("scan", str(path), "-f", "json")
    assert code == 0
    (summary,) = findings(out)
    assert summary["rule_id"] == "S100" and summary["evidence"]["verdict"] == "clean"
    assert summary["evidence"]["sha256"] and summary["evidence"]["models"][0]["format"] == "numpy"


def test_fail_on_never_and_output_file(cli: Cli, tmp_path: Path, evil_pickle: bytes) -> None:
    (tmp_path / "m.bin").write_bytes(evil_pickle)
    out_file = tmp_path / "out" / "r.json"
    code, out, _ = cli(
        "scan", str(tmp_path), "-f", "json", "-o", str(out_file), "--fail-on", "never"
    )
    assert code == 0 and out == ""
    assert any(f["rule_id"] == "S101" for f in json.loads(out_file.read_text())["findings"])


def test_missing_path_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("scan", str(tmp_path / "nope.pt"))
    assert code == 2 and "no such file" in err and "Traceback" not in err


def test_bad_bounds_are_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("scan", str(tmp_path), "--max-depth", "0")
    assert code == 2 and "bounds" in err


def test_depth_bound_makes_the_file_unscannable_not_clean(
    cli: Cli, tmp_path: Path, evil_pickle: bytes
) -> None:
    inner = ZipSpec().add("x.bin", evil_pickle).build()
    outer = ZipSpec().add("inner.zip", inner).build()
    (tmp_path / "o.zip").write_bytes(outer)
    code, out, _ = cli("scan", str(tmp_path / "o.zip"), "-f", "json", "--max-depth", "1")
    assert code == 1
    rules = {f["rule_id"] for f in findings(out)}
    assert "S206" in rules and "S101" not in rules


def test_bom_lists_models_with_hashes_and_verdicts(cli: Cli, tmp_path: Path) -> None:
    pytest.importorskip("cyclonedx")
    np.save(tmp_path / "a.npy", np.arange(4))
    out_file = tmp_path / "bom.json"
    code, _, _ = cli("bom", str(tmp_path), "-o", str(out_file))
    assert code == 0
    bom = json.loads(out_file.read_text())
    assert bom["specVersion"] == "1.6"
    (comp,) = bom["components"]
    assert comp["type"] == "machine-learning-model" and comp["name"] == "a.npy"
    assert comp["hashes"][0]["alg"] == "SHA-256"
    props = {p["name"]: p["value"] for p in comp["properties"]}
    assert props["bastion:verdict"] == "clean" and props["bastion:format"] == "numpy"


def test_sign_then_verify_then_tamper(cli: Cli, tmp_path: Path) -> None:
    pytest.importorskip("model_signing")
    model = tmp_path / "model"
    model.mkdir()
    np.save(model / "w.npy", np.ones(3))
    assert cli("keygen", "--out", str(tmp_path / "keys"))[0] == 0
    assert cli("sign", str(model), "--key", str(tmp_path / "keys/private.pem"))[0] == 0
    assert (model / "model.sig").is_file()
    code, out, _ = cli(
        "verify", str(model), "--key", str(tmp_path / "keys/public.pem"), "-f", "json"
    )
    assert code == 0 and findings(out)[0]["rule_id"] == "S504"
    np.save(model / "w.npy", np.zeros(3))
    code, out, _ = cli(
        "verify", str(model), "--key", str(tmp_path / "keys/public.pem"), "-f", "json"
    )
    assert code == 1 and findings(out)[0]["rule_id"] == "S502"


def test_verify_with_the_wrong_key_fails(cli: Cli, tmp_path: Path) -> None:
    pytest.importorskip("model_signing")
    model = tmp_path / "m.npy"
    np.save(model, np.ones(3))
    cli("keygen", "--out", str(tmp_path / "a"))
    cli("keygen", "--out", str(tmp_path / "b"))
    assert cli("sign", str(model), "--key", str(tmp_path / "a/private.pem"))[0] == 0
    code, out, _ = cli("verify", str(model), "--key", str(tmp_path / "b/public.pem"), "-f", "json")
    assert code == 1 and findings(out)[0]["rule_id"] == "S502"
    code, _, err = cli("keygen", "--out", str(tmp_path / "a"))
    assert code == 2 and "refusing" in err


def test_the_project_source_tree_has_no_findings(cli: Cli) -> None:
    root = Path(__file__).resolve().parents[2]
    code, out, _ = cli("scan", str(root / "src"), str(root / "tests"), "-f", "json")
    assert code == 0, [f["message"] for f in findings(out)]
    assert findings(out) == []


def test_third_party_scanner_plugins_run_after_the_builtin(cli: Cli, tmp_path: Path) -> None:
    from bastion.findings import Finding, Severity, Subject, SubjectKind
    from bastion.registry import registry

    class Policy:
        name = "site-policy"

        def scan(self, paths: list[Path]) -> list[Finding]:
            return [
                Finding(
                    rule_id="X001",
                    title="site policy",
                    message=f"{len(paths)} path(s) seen",
                    severity=Severity.LOW,
                    analyser="scan",
                    subject=Subject(kind=SubjectKind.FILE, id=str(p)),
                )
                for p in paths
            ]

    registry("scanners").register("site-policy", Policy)
    try:
        np.save(tmp_path / "a.npy", np.arange(3))
        code, out, _ = cli("scan", str(tmp_path / "a.npy"), "-f", "json")
    finally:
        reg = registry("scanners")
        reg._loaded.pop("site-policy", None)
        reg._refs.pop("site-policy", None)
    assert code == 0
    assert {f["rule_id"] for f in findings(out)} == {"S100", "X001"}


def test_pre_commit_hook_runs_bastion_scan() -> None:
    import yaml

    root = Path(__file__).resolve().parents[2]
    (hook,) = yaml.safe_load((root / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "bastion-scan" and hook["entry"].startswith("bastion scan")
    assert hook["language"] == "python"
