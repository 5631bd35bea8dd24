"""Fixtures for the reliability suite: keys, guard configs, and the skip when Redis is absent."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.guard.conftest import IRIS_INPUT, KEYS, key_entry

INFER = "/v2/models/iris/infer"
_X = np.asarray(
    [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [5.9, 3.0, 5.1, 1.8], [6.3, 3.3, 6.0, 2.5]]
)


def body(n: int, *, bad: bool = False) -> dict[str, Any]:
    """One real iris row (a different one by n); `bad` puts a value out of the declared range."""
    row = _X[n % len(_X)].tolist()
    if bad:
        row[n % 4] = 99.0
    return {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": row}]}


def auth(principal: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[principal][0]}"}


def write_keys(directory: Path) -> Path:
    path = directory / "keys.yaml"
    path.write_text(yaml.safe_dump({"keys": [key_entry(p) for p in KEYS]}))
    return path


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return write_keys(tmp_path)


def config_writer(tmp_path: Path, keys_file: Path) -> Callable[..., Path]:
    """Write a guard.yaml: quota, validation, review of unsure virginica, top-1 output."""

    def write(name: str = "guard", *, quota: list[str], decision: bool = True, **over: Any) -> Path:
        cfg: dict[str, Any] = {
            "model": {
                "name": "iris",
                "protocol": "oip",
                "inputs": [IRIS_INPUT],
                "classes": ["setosa", "versicolor", "virginica"],
                "scores_output": "probabilities",
            },
            "store": {"kind": "sqlite", "path": str(tmp_path / "state.db")},
            "audit": {"path": str(tmp_path / f"{name}-audit.jsonl")},
            "policies": [
                {"kind": "api_key", "keys_file": str(keys_file), "reload_interval_s": 0},
                {"kind": "quota", "per_principal": quota, **over.pop("quota_extra", {})},
                {"kind": "input_validation", "max_bytes": 4096, "max_rows": 16},
                {
                    "kind": "decision",
                    "confidence_below": 0.6,
                    "high_impact_labels": ["virginica"],
                    "match": "all",
                    "route": "review",
                },
                {"kind": "output_minimisation", "default": {"mode": "top_k", "k": 1}},
            ],
        }
        if not decision:
            cfg["policies"] = [p for p in cfg["policies"] if p["kind"] != "decision"]
        cfg.update(over)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    return write


@pytest.fixture
def guard_config(tmp_path: Path, keys_file: Path) -> Callable[..., Path]:
    return config_writer(tmp_path, keys_file)


@pytest.fixture
def need_redis() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not on PATH (apt-get install redis-server; .ci/run does)")
    pytest.importorskip("redis", reason="the guard's Redis store needs the `redis` extra")
