"""The oracle is the attacker's access: counted, budgeted, access-limited, constraint-safe."""

from __future__ import annotations

from typing import Any

import pytest
from attack_targets import InProcessTarget, ScoresForbidden

from bastion.attacks import Access, Constraints, ConstraintViolation, Domain, InputSpace, Oracle
from bastion.errors import AccessDenied, BudgetExhausted
from bastion.target.base import OutputKind


def test_counts_every_input_and_stops_before_the_budget(digits: dict[str, Any]) -> None:
    target = InProcessTarget(digits["model"], OutputKind.SCORES, 64)
    oracle = Oracle(target, budget=10)
    oracle.labels(digits["x_test"][:4])
    oracle.scores(digits["x_test"][:6])
    assert oracle.queries == 10 == target.rows
    with pytest.raises(BudgetExhausted):
        oracle.labels(digits["x_test"][:1])
    assert target.rows == 10  # the query that would exceed was never sent


def test_label_only_access_refuses_scores(digits: dict[str, Any]) -> None:
    oracle = Oracle(ScoresForbidden(digits["model"], 64))
    assert oracle.access is Access.LABEL
    assert oracle.labels(digits["x_test"][:3]).shape == (3,)
    with pytest.raises(AccessDenied):
        oracle.scores(digits["x_test"][:3])
    with pytest.raises(AccessDenied):
        Oracle(ScoresForbidden(digits["model"], 64), access=Access.SCORES)


def test_scores_access_can_be_narrowed_to_labels(digits: dict[str, Any]) -> None:
    oracle = Oracle(InProcessTarget(digits["model"], OutputKind.SCORES, 64), access=Access.LABEL)
    with pytest.raises(AccessDenied):
        oracle.scores(digits["x_test"][:1])


def test_refuses_to_send_infeasible_inputs(digits: dict[str, Any]) -> None:
    space = InputSpace.build(
        64, (0.0, 1.0), domain=Domain.TABULAR, constraints=Constraints(immutable=(0,))
    )
    target = InProcessTarget(digits["model"], OutputKind.LABEL, 64)
    oracle = Oracle(target, space=space)
    x0 = digits["x_test"][:2]
    moved = x0.copy()
    moved[:, 0] = 1.0 - moved[:, 0]  # in range, but feature 0 is immutable
    with pytest.raises(ConstraintViolation):
        oracle.labels(moved, origin=x0)
    with pytest.raises(ConstraintViolation):
        oracle.labels(x0 + 2.0, origin=x0)
    assert target.rows == 0
