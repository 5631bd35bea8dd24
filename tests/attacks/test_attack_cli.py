"""`bastion attack` end to end: a real model served on loopback, data from a .npz/.csv file."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bastion.testing import ServerConfig, ServerState, model_app, serve_in_background


@pytest.fixture(autouse=True)
def _one_blas_thread_in_subprocesses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI subprocess trains small surrogates: one BLAS thread is faster on 2 cores."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")


@pytest.fixture(scope="module")
def served(digits: dict[str, Any]) -> Iterator[tuple[str, ServerState]]:
    state = ServerState()
    config = ServerConfig.vulnerable(model_name="digits", bounds=(0.0, 1.0))
    with serve_in_background(model_app(digits["model"], config, state)) as url:
        yield url, state


@pytest.fixture
def data_file(tmp_path: Path, digits: dict[str, Any]) -> Path:
    path = tmp_path / "attacker.npz"
    idx = digits["correct"][:12]
    np.savez(
        path,
        x=digits["x_test"][idx],
        y=digits["y_test"][idx],
        pool=digits["x_train"][:300],
        x_eval=digits["x_test"][100:200],
        y_eval=digits["y_test"][100:200],
        members_x=digits["x_train"][:60],
        members_y=digits["y_train"][:60],
        nonmembers_x=digits["x_test"][200:260],
        nonmembers_y=digits["y_test"][200:260],
    )
    return path


def test_attack_a_url_and_report_measured_findings(
    run_cli: Callable[..., Any], served: tuple[str, ServerState], data_file: Path
) -> None:
    url, state = served
    before = state.inputs
    proc = run_cli(
        "attack", "--url", url, "--model", "digits", "--data", str(data_file),
        "--attack", "square-linf,extraction-natural,membership-loss", "--budget", "150",
        "--eps", "0.2", "--bounds", "0,1", "--shape", "8,8", "-f", "json", "--fail-on", "never",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    rules = {f["rule_id"]: f for f in report["findings"]}
    assert set(rules) == {"A102", "A201", "A301"}
    evasion = rules["A102"]["evidence"]
    assert evasion["sample_size"] == 12 and evasion["success_rate"] >= 0.75
    assert all(f["analyser"] == "attack" for f in report["findings"])
    assert report["series"], "success and fidelity curves are in the report"
    spent = sum(f["evidence"]["total_queries"] for f in report["findings"])
    assert spent == state.inputs - before  # what the server answered


def test_label_only_endpoint_skips_score_attacks(
    run_cli: Callable[..., Any], digits: dict[str, Any], data_file: Path
) -> None:
    config = ServerConfig.vulnerable(model_name="digits", output="label", bounds=(0.0, 1.0))
    with serve_in_background(model_app(digits["model"], config)) as url:
        proc = run_cli(
            "attack", "--url", url, "--model", "digits", "--data", str(data_file),
            "--attack", "square-linf,hopskipjump-l2", "--budget", "300", "--bounds", "0,1",
            "-f", "json", "--fail-on", "never",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [f["evidence"]["attack"] for f in report["findings"]] == ["hopskipjump-l2"]
    assert any("square-linf skipped: needs scores" in n for n in report["run"]["notes"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--attack", "no-such-attack"], "unknown attack"),
        (["--data", "missing.npz"], "no such file"),
        (["--budget", "0"], "--budget must be at least 1"),
    ],
)
def test_bad_input_is_a_clear_usage_error(
    run_cli: Callable[..., Any],
    served: tuple[str, ServerState],
    data_file: Path,
    args: list[str],
    message: str,
) -> None:
    url, _ = served
    base = {"--data": str(data_file), "--attack": "square-linf", "--budget": "10"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    flat = [item for pair in base.items() for item in pair]
    proc = run_cli("attack", "--url", url, "--model", "digits", *flat)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_pickled_data_is_refused_not_loaded(
    run_cli: Callable[..., Any], served: tuple[str, ServerState], tmp_path: Path
) -> None:
    path = tmp_path / "evil.npz"
    marker = tmp_path / "ran"
    np.savez(path, x=np.array([_Marker(marker)], dtype=object))
    url, _ = served
    proc = run_cli("attack", "--url", url, "--model", "digits", "--data", str(path))
    assert proc.returncode == 2
    assert "unpickling" in proc.stderr
    assert not marker.exists()


def test_csv_data_with_a_label_column(
    run_cli: Callable[..., Any],
    served: tuple[str, ServerState],
    tmp_path: Path,
    digits: dict[str, Any],
) -> None:
    idx = digits["correct"][:8]
    rows = np.column_stack([digits["x_test"][idx], digits["y_test"][idx]])
    path = tmp_path / "points.csv"
    header = ",".join([f"p{i}" for i in range(64)] + ["label"])
    np.savetxt(path, rows, delimiter=",", header=header, comments="")
    url, _ = served
    proc = run_cli(
        "attack", "--url", url, "--model", "digits", "--data", str(path), "--attack",
        "simba-dct", "--budget", "200", "--bounds", "0,1", "--shape", "8,8", "-f", "json",
        "--fail-on", "never",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    finding = json.loads(proc.stdout)["findings"][0]
    assert finding["evidence"]["sample_size"] == 8


class _Marker:
    """Harmless payload: unpickling it would create a marker file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.touch, (self.path,))


def test_attack_the_endpoint_a_manifest_names(
    run_cli: Callable[..., Any], served: tuple[str, ServerState], data_file: Path, tmp_path: Path
) -> None:
    url, state = served
    manifest = _manifest(
        tmp_path,
        url,
        endpoint="    controls:\n      rate_limit: 60/hour\n",
        model="    output: {kind: scores}\n",
    )
    before = state.inputs
    proc = run_cli(
        "attack", str(manifest), "--data", str(data_file), "--attack", "simba-dct",
        "--budget", "100", "-f", "json", "--fail-on", "never",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    finding = report["findings"][0]
    assert finding["subject"]["id"] == "reader_api"
    assert finding["subject"]["location"]["path"] == str(manifest)
    # 60/hour is 1440 queries a day per point: severity is read there
    assert finding["evidence"]["realistic_budget"] == 1440.0
    assert finding["evidence"]["total_queries"] == state.inputs - before


def test_a_global_query_cap_is_never_exceeded(
    run_cli: Callable[..., Any], served: tuple[str, ServerState], data_file: Path
) -> None:
    url, state = served
    before = state.inputs
    proc = run_cli(
        "attack", "--url", url, "--model", "digits", "--data", str(data_file), "--attack",
        "simba-pixel,hopskipjump-l2", "--budget", "500", "--max-queries", "120", "--bounds",
        "0,1", "-f", "json", "--fail-on", "never",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert state.inputs - before <= 120
    assert any("stopped" in note for note in report["run"]["notes"])


def _manifest(tmp_path: Path, url: str, *, endpoint: str = "", model: str = "") -> Path:
    """A one-endpoint digits system; `endpoint`/`model` add YAML lines to those elements."""
    manifest = tmp_path / "system.yaml"
    manifest.write_text(
        f"""version: 1
system:
  name: Digit reader
elements:
  - id: reader_api
    type: endpoint
    url: {url}/v2/models/digits/infer
    protocol: oip
    model: digit_model
{endpoint}  - id: digit_model
    type: model
    input: {{domain: image, shape: [8, 8], min: 0, max: 1}}
{model}""",
        encoding="utf-8",
    )
    return manifest


def _public_manifest(tmp_path: Path, url: str, public: str) -> Path:
    return _manifest(
        tmp_path, url, model=f"    output: {{kind: label}}\n    public_model: {{{public}}}\n"
    )


def test_transfer_from_the_public_model_a_manifest_names(
    run_cli: Callable[..., Any],
    served: tuple[str, ServerState],
    data_file: Path,
    tmp_path: Path,
    public_weights: Path,
) -> None:
    url, state = served
    shutil.copy(public_weights, tmp_path / "base.safetensors")
    digest = hashlib.sha256(public_weights.read_bytes()).hexdigest()
    manifest = _public_manifest(tmp_path, url, f"path: base.safetensors, sha256: '{digest}'")
    before = state.inputs
    proc = run_cli(
        "attack", str(manifest), "--data", str(data_file), "--attack", "transfer-pgd",
        "--budget", "2", "--eps", "0.2", "-f", "json", "--fail-on", "never",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    evidence = json.loads(proc.stdout)["findings"][0]["evidence"]
    assert evidence["params"]["surrogate"] == "public" and evidence["surrogate_queries"] == 0
    assert evidence["total_queries"] == 2 * 12 == state.inputs - before
    assert evidence["success_rate"] >= 0.5


def test_transfer_from_public_weights_given_on_the_command_line(
    run_cli: Callable[..., Any],
    served: tuple[str, ServerState],
    data_file: Path,
    public_weights: Path,
) -> None:
    url, state = served
    before = state.inputs
    proc = run_cli(
        "attack", "--url", url, "--model", "digits", "--data", str(data_file), "--attack",
        "transfer-pgd", "--public-model", str(public_weights), "--budget", "2", "--eps", "0.2",
        "--bounds", "0,1", "-f", "json", "--fail-on", "never",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    evidence = json.loads(proc.stdout)["findings"][0]["evidence"]
    assert evidence["params"]["surrogate"] == "public"
    assert evidence["total_queries"] == 2 * 12 == state.inputs - before


@pytest.mark.parametrize(
    ("public", "code", "message"),
    [
        ("path: nowhere.safetensors", 2, "cannot be read"),
        ("path: base.safetensors, sha256: '" + "0" * 64 + "'", 3, "the manifest pins"),
    ],
    ids=["missing", "digest"],
)
def test_a_bad_public_model_stops_before_any_query(
    run_cli: Callable[..., Any],
    served: tuple[str, ServerState],
    data_file: Path,
    tmp_path: Path,
    public_weights: Path,
    public: str,
    code: int,
    message: str,
) -> None:
    url, state = served
    shutil.copy(public_weights, tmp_path / "base.safetensors")
    manifest = _public_manifest(tmp_path, url, public)
    before = state.inputs
    proc = run_cli(
        "attack", str(manifest), "--data", str(data_file), "--attack", "transfer-pgd",
        "--budget", "2", "-f", "json",
    )  # fmt: skip
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert state.inputs == before
