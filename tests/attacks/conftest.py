"""Session fixtures: real scikit-learn models trained once per test session."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from bastion.attacks import Domain, InputSpace
from tests.attacks.attack_targets import deployments


@pytest.fixture(scope="session")
def deploy() -> Any:
    """`deploy(where, model, output)` -> Deployed; servers stop at session end."""
    yield from deployments()


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread() -> Any:
    """Small models train faster single-threaded, and other jobs share the cores."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def digits() -> dict[str, Any]:
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings; the model is good enough
        mlp.fit(x_tr, y_tr)
    correct = np.flatnonzero(mlp.predict(x_te) == y_te)
    space = InputSpace.build(64, (0.0, 1.0), shape=(8, 8), domain=Domain.IMAGE)
    return {
        "model": mlp,
        "x_train": x_tr,
        "y_train": y_tr,
        "x_test": x_te,
        "y_test": y_te,
        "correct": correct,
        "space": space,
    }


@pytest.fixture(scope="session")
def membership_models(digits: dict[str, Any]) -> dict[str, Any]:
    """An overfit model (200 members, no regularisation) and one with no member gap."""
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    perm = np.random.default_rng(0).permutation(len(x))
    x, y = x[perm], y[perm]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        overfit = MLPClassifier(hidden_layer_sizes=(128,), alpha=1e-6, max_iter=800, random_state=0)
        overfit.fit(x[:150], y[:150])
        # trained on 1400 records with strong regularisation: members look like anyone
        nogap = LogisticRegression(C=0.01, max_iter=300).fit(x[400:], y[400:])
    return {
        "overfit": (overfit, (x[:150], y[:150]), (x[150:300], y[150:300])),
        "nogap": (nogap, (x[400:550], y[400:550]), (x[150:300], y[150:300])),
        "attacker": (x[300:400], y[300:400]),
    }


@pytest.fixture(scope="session")
def public_mlp(digits: dict[str, Any]) -> Any:
    """A "public" model: another MLP trained on digits the target never saw.

    Trained on the last 340 test records (disjoint from the target's training
    split and from the points the tests attack, which come from the first 200).
    """
    mlp = MLPClassifier(hidden_layer_sizes=(48,), max_iter=400, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(digits["x_test"][200:], digits["y_test"][200:])
    return mlp


@pytest.fixture(scope="session")
def public_weights(public_mlp: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The public model as its publisher would ship it: safetensors in torch's layout."""
    from safetensors.numpy import save_file

    from tests.attacks.attack_targets import torch_layout

    path = tmp_path_factory.mktemp("public") / "digits-base.safetensors"
    save_file(torch_layout(public_mlp), str(path), metadata={"activation": "relu"})
    return path
