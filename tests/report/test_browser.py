"""The HTML report in headless Chromium: renders, no console errors, diagram and plots visible."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from bastion.compare import compare
from bastion.findings import Series
from bastion.manifest import parse_manifest
from bastion.report import render_html
from bastion.threatmodel import threat_model
from tests.threatmodel.patching import apply

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import screenshot_report  # noqa: E402

sys.path.pop(0)


def _needs_browser() -> None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright missing in CI: install the dev extra")
        pytest.skip("playwright not installed")
    if screenshot_report.chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium missing in CI: .ci/run must apt-get install chromium")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")


def _learning_curve() -> Series:
    """A real measured series: test accuracy of a digits classifier vs training size."""
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train, test = order[:1200], order[1200:]
    sizes, accs = [], []
    for n in (50, 100, 200, 400, 800):
        model = LogisticRegression(max_iter=300).fit(x[train[:n]] / 16, y[train[:n]])
        sizes.append(float(n))
        accs.append(float(model.score(x[test] / 16, y[test])))
    return Series(
        name="digits accuracy",
        x_label="training rows",
        y_label="accuracy",
        x=tuple(sizes),
        y=tuple(accs),
        sample_size=len(test),
    )


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    _needs_browser()
    doc = yaml.safe_load((ROOT / "examples" / "fraud-scoring" / "system.yaml").read_text())
    before = threat_model(parse_manifest(yaml.safe_dump(doc), "system.yaml"))
    fixed = apply(doc, {"set": {"elements.score_api.controls.rate_limit": "100/minute"}})
    after = threat_model(parse_manifest(yaml.safe_dump(fixed), "system.yaml"))
    report = compare(before, after).model_copy(update={"series": (_learning_curve(),)})
    html = tmp_path / "report.html"
    html.write_text(render_html(report))
    png = tmp_path / "report.png"
    started = time.monotonic()
    result = screenshot_report.inspect(html, png, full_page=True)
    assert time.monotonic() - started < 60
    assert result["console_errors"] == []
    assert result["diagram_visible"]
    assert result["diagram_box"]["width"] > 400 and result["diagram_box"]["height"] > 200
    assert len(result["charts"]) == 2  # before/after bars + the learning curve
    assert all(c["loaded"] and c["width"] > 200 for c in result["charts"])
    assert result["findings"] == len(after.findings)
    pixels = png.read_bytes()
    assert pixels[:8] == b"\x89PNG\r\n\x1a\n" and len(pixels) > 50_000
