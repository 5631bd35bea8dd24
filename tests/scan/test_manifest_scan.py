"""`bastion scan SYSTEM.yaml`: the declared artifacts are scanned and their pins checked."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pickle_asm import ZipSpec

from conftest import findings

Cli = Callable[..., tuple[int, str, str]]

MANIFEST = """version: 1
system:
  name: test system
elements:
  - id: clf
    type: model
    name: classifier
    artifact: {{path: models/clf.npy, format: numpy, sha256: "{pin}"}}
  - id: app
    type: client_app
    name: app
    bundle: dist/app.apk
  - id: gone
    type: model
    name: missing model
    artifact: {{path: models/missing.pt, format: torch}}
"""


def _system(tmp_path: Path, *, pin_ok: bool) -> Path:
    (tmp_path / "models").mkdir()
    np.save(tmp_path / "models/clf.npy", np.arange(5))
    (tmp_path / "dist").mkdir()
    tflite = b"\x1c\x00\x00\x00TFL3" + b"\0" * 64
    apk = ZipSpec().add("AndroidManifest.xml", b"<m/>").add("assets/plants.tflite", tflite)
    (tmp_path / "dist/app.apk").write_bytes(apk.build())
    digest = hashlib.sha256((tmp_path / "models/clf.npy").read_bytes()).hexdigest()
    pin = digest if pin_ok else "0" * 64
    path = tmp_path / "system.yaml"
    path.write_text(MANIFEST.format(pin=pin))
    return path


def test_manifest_artifacts_are_scanned_and_pins_checked(cli: Cli, tmp_path: Path) -> None:
    code, out, _ = cli("scan", str(_system(tmp_path, pin_ok=False)), "-f", "json")
    assert code == 1
    by_rule = {f["rule_id"]: f for f in findings(out)}
    assert by_rule["S501"]["evidence"]["element"] == "clf"
    assert by_rule["S501"]["subject"]["location"]["line"] is not None
    assert by_rule["S503"]["evidence"]["element"] == "gone"
    exposure = by_rule["S401"]
    assert exposure["subject"]["member"] == "assets/plants.tflite"
    assert exposure["evidence"]["format"] == "tflite"


def test_matching_pin_gives_no_integrity_finding(cli: Cli, tmp_path: Path) -> None:
    _, out, _ = cli("scan", str(_system(tmp_path, pin_ok=True)), "-f", "json")
    assert "S501" not in {f["rule_id"] for f in findings(out)}


def test_declared_format_that_the_content_contradicts(cli: Cli, tmp_path: Path) -> None:
    path = _system(tmp_path, pin_ok=True)
    path.write_text(path.read_text().replace("format: numpy", "format: safetensors"))
    _, out, _ = cli("scan", str(path), "-f", "json")
    (mismatch,) = [f for f in findings(out) if f["rule_id"] == "S505"]
    assert mismatch["evidence"]["declared_format"] == "safetensors"
    assert mismatch["evidence"]["content_format"] == "numpy"
