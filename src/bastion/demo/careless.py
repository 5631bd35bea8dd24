"""The demo's "careless team": a real model, shipped and served the way it often is.

A digits classifier (scikit-learn's own data) is trained, pickled next to the
manifest, copied into a mobile-app bundle, and described in a manifest that
declares no controls. The same deterministic training runs in the model-server
process, so nothing ever has to unpickle the file: bastion only scans it.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

__all__ = ["DemoData", "train", "write_system"]

MODEL_NAME = "digits"
SEED = 0


@dataclass(frozen=True)
class DemoData:
    model: Any
    x_train: npt.NDArray[np.float64]
    y_train: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.float64]
    y_test: npt.NDArray[np.int64]


def train() -> DemoData:
    """Deterministic: the same call in two processes gives the same model."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(SEED).permutation(len(x))
    tr, te = order[:900], order[900:]
    model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=SEED)
    model.fit(x[tr], y[tr])
    return DemoData(model, x[tr], y[tr], x[te], y[te])


def _attacker_data(data: DemoData, path: Path) -> None:
    """What an outsider could gather: digit images, plus records known to be in training.

    Images are easy to come by, labels are the work: the outsider has labelled
    only 40 of its 600 images. A copy's worth is what the API adds to those 40.
    """
    te_x, te_y = data.x_test, data.y_test
    np.savez(
        path,
        x=te_x[:40],
        y=te_y[:40],
        pool=te_x[300:600],
        x_eval=te_x[600:],
        y_eval=te_y[600:],
        members_x=data.x_train[:200],
        members_y=data.y_train[:200],
        nonmembers_x=te_x[300:500],
        nonmembers_y=te_y[300:500],
    )


def write_system(data: DemoData, workdir: Path, url: str) -> Path:
    """Pickle, app bundle, attacker data and manifest; returns the manifest path."""
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "model.pkl").open("wb") as fh:
        pickle.dump(data.model, fh, protocol=4)
    with zipfile.ZipFile(workdir / "leaflet-app.apk", "w") as apk:
        apk.writestr("AndroidManifest.xml", "<manifest package='example.digits'/>")
        apk.write(workdir / "model.pkl", "assets/models/model.pkl")
    _attacker_data(data, workdir / "attacker-data.npz")
    manifest = {
        "version": 1,
        "system": {
            "name": "Digit reader (careless deployment)",
            "description": "Reads handwritten digits on cheques; served and shipped carelessly.",
        },
        "elements": [
            {"id": "customers", "type": "actor", "name": "App users"},
            {
                "id": "app",
                "type": "client_app",
                "name": "Mobile app",
                "platform": "android",
                "bundle": "leaflet-app.apk",
                "ships": ["reader"],
            },
            {
                "id": "api",
                "type": "endpoint",
                "name": "Inference API",
                "url": url,
                "protocol": "oip",
                "model_name": MODEL_NAME,
                "model": "reader",
                "public": True,
            },
            {
                "id": "reader",
                "type": "model",
                "name": "Digit classifier",
                "framework": "scikit-learn",
                "artifact": {"path": "model.pkl", "format": "pickle"},
                "input": {
                    "domain": "image",
                    "shape": [64],
                    "dtype": "float64",
                    "min": 0,
                    "max": 16,
                },
                "output": {"kind": "scores"},
                "personal_data": True,
            },
            {
                "id": "amount_check",
                "type": "decision",
                "name": "Accept cheque amount",
                "action": "credit the amount read from the cheque",
                "impact": "high",
                "driven_by": ["reader"],
            },
        ],
        "flows": [
            {"from": "customers", "to": "app", "carries": "user_input"},
            {"from": "app", "to": "api", "carries": "user_input"},
            {"from": "api", "to": "reader", "carries": "user_input"},
            {"from": "reader", "to": "amount_check", "carries": "predictions"},
        ],
        "boundaries": [
            {
                "id": "devices",
                "name": "Customers' phones",
                "trust": "untrusted",
                "contains": ["customers", "app"],
            },
            {
                "id": "backend",
                "name": "Backend",
                "trust": "internal",
                "contains": ["api", "reader", "amount_check"],
            },
        ],
    }
    path = workdir / "system.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return path
