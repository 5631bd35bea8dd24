"""Surrogate models an attacker trains from the target's answers, with input gradients.

A scikit-learn MLP is enough to copy a small model and, with the gradient of
its loss computed here in numpy from its weights, to craft PGD adversarials
that transfer to the target — no torch needed.
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor

from bastion.attacks.base import Norm
from bastion.attacks.space import InputSpace

__all__ = ["Differentiable", "fit_surrogate", "forward", "input_gradient", "pgd"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Differentiable(Protocol):
    """An MLP in scikit-learn's layout: a fitted MLPClassifier or a public model's weights."""

    @property
    def coefs_(self) -> Any: ...
    @property
    def intercepts_(self) -> Any: ...
    @property
    def activation(self) -> str: ...
    @property
    def classes_(self) -> Any: ...


def fit_surrogate(
    x: FloatArray,
    y: IntArray | FloatArray,
    *,
    kind: str = "mlp",
    hidden: tuple[int, ...] = (64,),
    seed: int = 0,
    max_iter: int = 300,
) -> Any:
    """Train on labels (classifier) or on score vectors (regressor: distillation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if y.ndim == 2:
            model: Any = MLPRegressor(
                hidden_layer_sizes=hidden, max_iter=max_iter, random_state=seed
            )
        elif kind == "logistic":
            model = LogisticRegression(max_iter=max_iter)
        else:
            model = MLPClassifier(hidden_layer_sizes=hidden, max_iter=max_iter, random_state=seed)
        if y.ndim == 1 and np.unique(y).size < 2:
            return _Constant(int(y[0]) if y.size else 0)
        model.fit(x, y)
    return model


class _Constant:
    """What a surrogate is when every answer so far was the same class."""

    def __init__(self, label: int) -> None:
        self.label = label

    def predict(self, x: FloatArray) -> IntArray:
        return np.full(x.shape[0], self.label, dtype=np.int64)


def predict_labels(model: Any, x: FloatArray) -> IntArray:
    if isinstance(model, MLPRegressor):
        return np.asarray(np.argmax(model.predict(x).reshape(x.shape[0], -1), axis=1))
    return np.asarray(model.predict(x), dtype=np.int64)


def _act(name: str, z: FloatArray) -> FloatArray:
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "logistic":
        return np.asarray(1.0 / (1.0 + np.exp(-z)))
    return z


def _dact(name: str, a: FloatArray) -> FloatArray:
    """Derivative expressed through the activation's output `a`."""
    if name == "relu":
        return (a > 0).astype(np.float64)
    if name == "tanh":
        return 1.0 - a * a
    if name == "logistic":
        return a * (1.0 - a)
    return np.ones_like(a)


def _layers(model: Differentiable, x: FloatArray) -> list[FloatArray]:
    """The input, each hidden layer's activations and the output logits."""
    name = str(model.activation)
    acts = [x]
    last = len(model.coefs_) - 1
    for i, (w, b) in enumerate(zip(model.coefs_, model.intercepts_, strict=True)):
        z = acts[-1] @ w + b
        acts.append(z if i == last else _act(name, z))
    return acts


def forward(model: Differentiable, x: FloatArray) -> FloatArray:
    """Output logits (one logistic unit for a binary scikit-learn model)."""
    return _layers(model, x)[-1]


def input_gradient(model: Differentiable, x: FloatArray, labels: IntArray) -> FloatArray:
    """d(cross-entropy of `labels`)/d(input) for an MLP, by backprop."""
    name = str(model.activation)
    acts = _layers(model, x)
    logits = acts[-1]
    cls_index = np.searchsorted(model.classes_, labels)
    if logits.shape[1] == 1:  # binary: one logistic unit for classes_[1]
        p = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        grad = (p - (cls_index == 1))[:, None]
    else:
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(x.shape[0]), cls_index] -= 1.0
        grad = p
    for i in range(len(model.coefs_) - 1, -1, -1):
        grad = grad @ model.coefs_[i].T
        if i > 0:
            grad = grad * _dact(name, acts[i])
    return np.asarray(grad)


def pgd(
    model: Differentiable,
    space: InputSpace,
    x0: FloatArray,
    labels: IntArray,
    *,
    eps: float,
    norm: Norm = Norm.LINF,
    steps: int = 40,
    targeted: bool = False,
    rng: np.random.Generator | None = None,
) -> FloatArray:
    """Projected gradient descent on the surrogate, kept inside the feasible space."""
    rng = rng or np.random.default_rng(0)
    free = space.free.astype(np.float64)
    alpha = 2.5 * eps / steps
    sign = -1.0 if targeted else 1.0
    x = space.project(x0 + rng.uniform(-eps, eps, x0.shape) * free * 0.5, x0)
    for _ in range(steps):
        g = sign * input_gradient(model, x, labels) * free
        if norm is Norm.LINF:
            x = np.clip(x + alpha * np.sign(g), x0 - eps, x0 + eps)
        else:
            g /= np.linalg.norm(g, axis=1, keepdims=True) + 1e-12
            d = x + alpha * g - x0
            scale = np.minimum(1.0, eps / (np.linalg.norm(d, axis=1, keepdims=True) + 1e-12))
            x = x0 + d * scale
        x = space.project(x, x0)
    return x
