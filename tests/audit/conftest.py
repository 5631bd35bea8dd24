"""A real model served on loopback (vulnerable or hardened) and its manifest, for audits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from bastion.testing.background import serve_in_background
from bastion.testing.servers import ServerConfig, model_app

HARDENED_KEY = "s3cret-test-key"


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A classifier trained on half of iris, and the attacker's data file for it."""
    x, y = load_iris(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    tr, te = order[:75], order[75:]
    model = LogisticRegression(max_iter=1000).fit(x[tr], y[tr])
    data = tmp_path_factory.mktemp("data") / "attacker.npz"
    np.savez(
        data,
        x=x[te],
        y=y[te],
        pool=x[te][:37],  # the attacker's queries, and held-out rows to measure the copy on
        x_eval=x[te][37:],
        y_eval=y[te][37:],
        members_x=x[tr][:40],
        members_y=y[tr][:40],
        nonmembers_x=x[te][:40],
        nonmembers_y=y[te][:40],
    )
    return model, data


def write_manifest(path: Path, url: str, hardened: bool) -> Path:
    controls: dict[str, Any] = {}
    model_controls: dict[str, Any] = {}
    if hardened:
        controls = {"auth": "api_key", "rate_limit": "30/second", "input_validation": True}
        model_controls = {"rollback": True, "logging": True, "monitoring": True}
    manifest = {
        "system": {"name": "hardened iris" if hardened else "vulnerable iris"},
        "elements": [
            {"id": "users", "type": "actor"},
            {
                "id": "api",
                "type": "endpoint",
                "url": url,
                "protocol": "oip",
                "model_name": "iris",
                "model": "clf",
                "controls": controls,
                "exposes_metadata": not hardened,
                "verbose_errors": not hardened,
            },
            {
                "id": "clf",
                "type": "model",
                "version": "1",
                "input": {"domain": "tabular", "shape": [4], "min": 0, "max": 10},
                "output": {"kind": "label"} if hardened else {"kind": "scores"},
                "controls": model_controls,
            },
        ],
        "flows": [
            {"from": "users", "to": "api", "carries": "user_input", "encrypted": True},
            {"from": "api", "to": "clf", "carries": "user_input"},
        ],
        "boundaries": [{"id": "net", "trust": "untrusted", "contains": ["users"]}],
    }
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


@pytest.fixture
def vulnerable(iris: tuple[Any, Path], tmp_path: Path) -> Iterator[tuple[Path, Path, Any]]:
    app = model_app(iris[0], ServerConfig.vulnerable(model_name="iris"))
    with serve_in_background(app) as url:
        yield write_manifest(tmp_path / "system.yaml", url, False), iris[1], app.state.bastion


@pytest.fixture
def hardened(iris: tuple[Any, Path], tmp_path: Path) -> Iterator[tuple[Path, Path, Any]]:
    app = model_app(iris[0], ServerConfig.hardened(model_name="iris", api_key=HARDENED_KEY))
    with serve_in_background(app) as url:
        yield write_manifest(tmp_path / "system.yaml", url, True), iris[1], app.state.bastion
