"""In-process targets expose exactly the declared access: labels, top-k or rounded scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from bastion.errors import TargetError, UsageError
from bastion.target import CallableTarget, OutputKind, SklearnTarget


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, LogisticRegression]:
    x, y = load_iris(return_X_y=True)
    return x, LogisticRegression(max_iter=500).fit(x, y)


def test_scores_match_the_model_at_full_precision(
    iris: tuple[np.ndarray, LogisticRegression],
) -> None:
    x, model = iris
    result = SklearnTarget(model).query(x[:5])
    assert result.scores is not None
    np.testing.assert_allclose(result.scores, model.predict_proba(x[:5]))
    np.testing.assert_array_equal(result.labels, model.predict(x[:5]))


def test_label_only_never_returns_scores(iris: tuple[np.ndarray, LogisticRegression]) -> None:
    x, model = iris
    result = SklearnTarget(model, output=OutputKind.LABEL).query(x[:5])
    assert result.scores is None
    np.testing.assert_array_equal(result.labels, model.predict(x[:5]))


def test_top_k_hides_the_rest_and_rounds(iris: tuple[np.ndarray, LogisticRegression]) -> None:
    x, model = iris
    result = SklearnTarget(model, output=OutputKind.TOP_K, top_k=1, decimals=2).query(x[:5])
    assert result.scores is not None
    assert (np.isnan(result.scores).sum(axis=1) == 2).all()
    shown = result.scores[~np.isnan(result.scores)]
    np.testing.assert_array_equal(shown, np.round(shown, 2))


def test_estimator_without_proba_exposes_class_indices() -> None:
    x, y = load_iris(return_X_y=True)
    svc = LinearSVC().fit(x, y + 10)  # class values are not indices
    result = SklearnTarget(svc, output=OutputKind.LABEL).query(x[:3])
    np.testing.assert_array_equal(result.labels, svc.predict(x[:3]) - 10)
    with pytest.raises(UsageError):
        SklearnTarget(svc)


def test_model_failure_is_a_target_error(iris: tuple[np.ndarray, LogisticRegression]) -> None:
    _, model = iris
    with pytest.raises(TargetError, match="shape"):
        SklearnTarget(model).query(np.zeros((2, 9)))


def test_callable_label_function() -> None:
    target = CallableTarget(lambda x: (x[:, 0] > 0).astype(int), output=OutputKind.LABEL)
    assert target.query(np.array([[1.0], [-1.0]])).labels.tolist() == [1, 0]
    with pytest.raises(TargetError):
        CallableTarget(lambda x: x[:, 0]).query(np.array([[1.0]]))
