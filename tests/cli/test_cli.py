"""The CLI as users run it: formats, -o, exit codes 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "fraud-scoring" / "system.yaml")


def test_fail_on_controls_the_exit_code(run_cli) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("threats", EXAMPLE, "--fail-on", "critical").returncode == 1
    assert run_cli("threats", EXAMPLE, "--fail-on", "never").returncode == 0


def test_clean_system_exits_0(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.yaml"
    path.write_text(
        "system: {name: s}\nelements:\n  - {id: m, type: model, version: '1', "
        "output: {kind: label}, controls: {rollback: true}}\n"
    )
    proc = run_cli("threats", str(path), "--fail-on", "info", "-f", "json")
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["findings"] == []


def test_output_file_and_format(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "r" / "report.sarif"
    proc = run_cli("threats", EXAMPLE, "-f", "sarif", "-o", str(out), "--fail-on", "never")
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert json.loads(out.read_text())["version"] == "2.1.0"
    assert "findings" in proc.stderr


def test_bad_options_are_usage_errors(run_cli) -> None:  # type: ignore[no-untyped-def]
    for args in (
        ("threats", EXAMPLE, "-f", "pdf"),
        ("threats", EXAMPLE, "--fail-on", "severe"),
        ("catalogue", "show", "T999"),
        ("nonsense",),
    ):
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_catalogue_commands(run_cli) -> None:  # type: ignore[no-untyped-def]
    listing = run_cli("catalogue", "list")
    assert listing.returncode == 0
    assert "T014" in listing.stdout and "37 threats" in listing.stderr
    shown = json.loads(run_cli("catalogue", "show", "t014").stdout)
    assert shown["id"] == "T014"
    assert any(n.startswith("AML.T0011.000 Unsafe AI Artifacts") for n in shown["atlas_names"])
    mitigation = json.loads(run_cli("catalogue", "show", "M04").stdout)
    assert "AML.M0004 Restrict Number of AI Model Queries" in mitigation["atlas_names"]


def test_user_catalogue_adds_a_threat(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    extra = tmp_path / "ours.yaml"
    extra.write_text(
        "threats:\n"
        "  - id: X001\n"
        "    title: Fraud model lacks a shadow deployment\n"
        "    category: operations\n"
        "    description: Our policy wants every fraud model to run in shadow before it decides.\n"
        "    severity: low\n"
        "    likelihood: low\n"
        "    applies_to: [model]\n"
        "    when: {attr: task, eq: binary classification}\n"
        "    message: '{name} has no shadow deployment.'\n"
        "    mitigations: [{id: M14, advice: Run the new model in shadow for a week first.}]\n"
    )
    proc = run_cli("threats", EXAMPLE, "-f", "json", "--fail-on", "never", "-c", str(extra))
    assert proc.returncode == 0, proc.stderr
    ids = {f["rule_id"] for f in json.loads(proc.stdout)["findings"]}
    assert "X001" in ids
    bad = tmp_path / "bad.yaml"
    bad.write_text(extra.read_text().replace("attr: task", "atr: task"))
    proc = run_cli("threats", EXAMPLE, "-c", str(bad))
    assert proc.returncode == 2 and "bad.yaml:9" in proc.stderr


def test_assumptions_suppress_and_count(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = Path(EXAMPLE).read_text() + (
        "\nassumptions:\n  - {rule: T020, element: fraud_model, reason: accepted by risk board}\n"
    )
    path = tmp_path / "s.yaml"
    path.write_text(text)
    data = json.loads(run_cli("threats", str(path), "-f", "json", "--fail-on", "never").stdout)
    assert ("T020", "fraud_model") not in {
        (f["rule_id"], f["subject"]["id"]) for f in data["findings"]
    }
    assert data["run"]["suppressed"] == 1
