"""Tabular attacks never send an input that breaks the real-world constraints.

The oracle raises `ConstraintViolation` before sending an infeasible row, so
each run below would fail loudly if any attack proposed one; hypothesis draws
the constraint sets (immutable, integer, categorical, monotone features).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from attack_targets import InProcessTarget
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.neural_network import MLPClassifier

from bastion.attacks import AttackData, Constraints, Domain, InputSpace, Oracle
from bastion.registry import registry
from bastion.target.base import OutputKind

N_FEATURES = 8
INT_FEATURES = (4, 5)  # counts in 0..10
CAT_FEATURE = 6  # codes 0, 1, 2
TABULAR_ATTACKS = [
    "hopskipjump-l2",
    "hopskipjump-linf",
    "boundary",
    "rays",
    "square-linf",
    "square-l2",
    "simba-pixel",
]


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.random((n, N_FEATURES))
    x[:, list(INT_FEATURES)] = rng.integers(0, 11, (n, len(INT_FEATURES)))
    x[:, CAT_FEATURE] = rng.integers(0, 3, n)
    return x


@pytest.fixture(scope="module")
def credit() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    x = _rows(rng, 600)
    score = x[:, 0] + x[:, 1] - x[:, 2] + 0.1 * x[:, 4] - 0.1 * x[:, 5] + 0.3 * x[:, 6]
    y = (score > np.median(score)).astype(int)
    model = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y)
    return {"model": model, "x": x[:12]}


constraint_sets = st.builds(
    lambda imm, mono, cat_mono: Constraints(
        immutable=tuple(sorted(imm)),
        integer=INT_FEATURES,
        categorical={CAT_FEATURE: (0.0, 1.0, 2.0)},
        monotone={
            **{j: s for j, s in mono.items() if j not in imm},
            **({CAT_FEATURE: cat_mono} if cat_mono and CAT_FEATURE not in imm else {}),
        },
    ),
    st.sets(st.integers(0, N_FEATURES - 1), max_size=4),
    st.dictionaries(st.sampled_from([0, 1, 2, 3, 4, 7]), st.sampled_from([-1, 1]), max_size=3),
    st.sampled_from([0, -1, 1]),
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(constraints=constraint_sets, name=st.sampled_from(TABULAR_ATTACKS), seed=st.integers(0, 99))
def test_no_attack_sends_an_infeasible_row(
    credit: dict[str, Any], constraints: Constraints, name: str, seed: int
) -> None:
    space = InputSpace.build(
        N_FEATURES,
        (0.0, [1, 1, 1, 1, 10, 10, 2, 1]),
        domain=Domain.TABULAR,
        constraints=constraints,
    )
    target = InProcessTarget(credit["model"], OutputKind.SCORES, N_FEATURES)
    oracle = Oracle(target, space=space)  # raises ConstraintViolation on any bad row
    data = AttackData(space=space, x=credit["x"])
    attack = registry("attacks").get(name)()
    result = attack.run(oracle, data, budget=120, seed=seed)
    assert not space.violations(data.x).any()
    assert result.total_queries == target.rows > 0
    assert result.adversarials is not None
    assert not space.violations(result.adversarials, data.x).any()


def test_projection_is_feasible_and_idempotent() -> None:
    rng = np.random.default_rng(3)
    space = InputSpace.build(
        N_FEATURES,
        (0.0, [1, 1, 1, 1, 10, 10, 2, 1]),
        domain=Domain.TABULAR,
        constraints=Constraints(
            immutable=(0,),
            integer=INT_FEATURES,
            categorical={6: (0.0, 1.0, 2.0)},
            monotone={1: 1, 6: -1},
        ),
    )
    x0 = _rows(rng, 50)
    wild = x0 + rng.normal(0, 3, x0.shape)
    p = space.project(wild, x0)
    assert not space.violations(p, x0).any()
    assert np.array_equal(space.project(p, x0), p)
    assert np.all(p[:, 1] >= x0[:, 1]) and np.all(p[:, 6] <= x0[:, 6])
    assert np.array_equal(p[:, 0], x0[:, 0])
