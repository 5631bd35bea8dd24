"""Session fixtures: real scikit-learn models trained once per test session."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from bastion.attacks import Domain, InputSpace


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
