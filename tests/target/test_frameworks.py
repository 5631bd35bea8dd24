"""torch, ONNX and ART-style models answer like the scikit-learn model they encode."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from bastion.target import Ledger, OutputKind
from bastion.target.frameworks import OnnxTarget, TorchTarget, from_art


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, LogisticRegression]:
    x, y = load_iris(return_X_y=True)
    return x, LogisticRegression(max_iter=1000).fit(x, y)


def test_torch_module_scores_and_logits(iris: tuple[np.ndarray, Any]) -> None:
    torch = pytest.importorskip("torch")
    x, lr = iris
    layer = torch.nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(lr.coef_))
        layer.bias.copy_(torch.as_tensor(lr.intercept_))
    scores = Ledger(TorchTarget(layer)).query(x[:10]).scores
    assert scores is not None
    np.testing.assert_allclose(scores, lr.predict_proba(x[:10]), atol=1e-5)
    logits = TorchTarget(layer, output=OutputKind.LOGITS).query(x[:10])
    assert logits.scores is not None and (logits.scores < 0).any()
    np.testing.assert_array_equal(logits.labels, lr.predict(x[:10]))


def test_onnx_graph_scores(iris: tuple[np.ndarray, Any]) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    x, lr = iris
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["z0"]),
            helper.make_node("Add", ["z0", "b"], ["z"]),
            helper.make_node("Softmax", ["z"], ["probabilities"], axis=1),
        ],
        "iris",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 3])],
        [
            numpy_helper.from_array(lr.coef_.T.astype(np.float32), "w"),
            numpy_helper.from_array(lr.intercept_.astype(np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    target = OnnxTarget(model.SerializeToString(), top_k=None, decimals=3)
    result = target.query(x[:10])
    assert target.info().input_shape == (4,)
    assert result.scores is not None
    np.testing.assert_allclose(result.scores, lr.predict_proba(x[:10]), atol=1e-3)
    np.testing.assert_array_equal(result.scores, np.round(result.scores, 3))
    assert onnx.__version__


def test_art_style_estimator(iris: tuple[np.ndarray, Any]) -> None:
    x, lr = iris

    class Estimator:  # the attributes ART classifiers carry
        nb_classes = 3
        input_shape = (4,)
        clip_values = (0.0, 8.0)

        def predict(self, batch: np.ndarray) -> np.ndarray:
            return lr.predict_proba(batch)

    target = from_art(Estimator(), output=OutputKind.LABEL)
    info = target.info()
    assert (info.n_classes, info.input_shape, info.bounds) == (3, (4,), (0.0, 8.0))
    result = target.query(x[:5])
    assert result.scores is None
    np.testing.assert_array_equal(result.labels, lr.predict(x[:5]))
