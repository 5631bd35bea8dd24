"""`bastion detect fit|eval` as a user runs them: files in, report out, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bastion.detect.profile import Profile
from bastion.detect.streams import Task


def test_fit_writes_a_profile_from_npy(run_cli, tmp_path: Path, cancer: Task) -> None:
    data = tmp_path / "benign.npy"
    np.save(data, cancer.x_fit)
    out = tmp_path / "p.json"
    r = run_cli("detect", "fit", "--data", str(data), "-o", str(out), "--dim", "8")
    assert r.returncode == 0, r.stderr
    prof = Profile.load(out)
    assert prof.dim == 8 and prof.shape == (30,) and prof.n_fit == len(cancer.x_fit)


def test_fit_refuses_bad_input_with_exit_2(run_cli, tmp_path: Path) -> None:
    r = run_cli("detect", "fit", "--data", str(tmp_path / "nope.npy"))
    assert r.returncode == 2 and "no such file" in r.stderr
    bad = tmp_path / "x.csv"
    bad.write_text("1,2\nfoo,3\n")
    r = run_cli("detect", "fit", "--data", str(bad))
    assert r.returncode == 2 and "cannot read as numbers" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("detect", "eval", "--configuration", "nonsense", "--no-art")
    assert r.returncode == 2 and "unknown configuration" in r.stderr


def test_eval_writes_an_html_report_with_plots_and_json(run_cli, tmp_path: Path) -> None:
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    r = run_cli(
        "detect", "eval", "--task", "cancer", "--configuration", "rows+extraction",
        "--runs", "1", "--benign", "5", "--adaptive-runs", "0", "--budget", "60", "--no-art",
        "--extraction-budget", "100", "--benign-after", "4",
        "-o", str(html), "--json", str(js),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    page = html.read_text()
    assert page.count("data:image/png;base64,") == 2 and "simba-pixel" in page
    res = json.loads(js.read_text())
    assert res[0]["task"] == "cancer" and res[0]["benign_principals"] == 5
    assert res[0]["benign_after_principals"] == 4 and "after the attacks" in page
    assert {row["attack"] for row in res[0]["rows"]} >= {"simba-pixel", "hopskipjump-l2"}
    # memory: the bound for a full history, and far less held by five short benign streams
    assert 0 < res[0]["memory_bytes_held"] < res[0]["memory_bytes_per_principal"] / 10
    assert "held on average by the benign ones" in r.stdout
