"""`bastion guard keys new` makes a key whose file entry holds only a hash, and it works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from bastion.guard import Guard, load_config
from bastion.guard.adapters.wrap import wrap


def test_new_key_round_trip(run_cli, write_config, keys_file: Path, model) -> None:
    res = run_cli("guard", "keys", "new", "--principal", "dora", "--scope", "predict")
    assert res.returncode == 0, res.stderr
    token = res.stdout.strip()
    entries = yaml.safe_load(res.stderr.split("\n", 1)[1])
    assert entries[0]["principal"] == "dora"
    assert token.split(".", 1)[1] not in res.stderr  # the secret is never in the file entry
    doc = yaml.safe_load(keys_file.read_text())
    doc["keys"] += entries
    keys_file.write_text(yaml.safe_dump(doc))
    guard = Guard(load_config(write_config()))
    try:
        out = wrap(guard, model.predict_proba)(
            np.array([[5.1, 3.5, 1.4, 0.2]], np.float32), api_key=token
        )
        assert out.labels.tolist() == [0]
    finally:
        guard.close()


def test_broken_key_file_is_a_config_error_at_its_line(run_cli, write_config, keys_file) -> None:
    keys_file.write_text("keys:\n  - id: abcd\n    principal: x\n    sha256: nothex\n")
    res = run_cli(
        "guard", "serve", "--config", str(write_config()), "--upstream", "http://127.0.0.1:9"
    )
    assert res.returncode == 2
    assert f"{keys_file}:4:" in res.stderr and "Traceback" not in res.stderr
