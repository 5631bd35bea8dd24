"""The shared table: every attack against every test target, asserting its measured effect.

Each row states the budget and the success threshold it is held to. Label-only
attacks run against a target whose answers raise if scores are read. Every run
checks that the reported query count equals what the target itself counted
and that no point exceeded its budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from attack_targets import InProcessTarget, ScoresForbidden

from bastion.attacks import Access, AttackData, Oracle
from bastion.attacks.verdict import to_finding
from bastion.registry import registry
from bastion.target.base import OutputKind

N_POINTS = 40

# name, per-point budget, untargeted eps, targeted eps, targeted floor. Untargeted
# attacks must fool the undefended MLP on >= 90 % of points within budget and eps
# (None: any adversarial counts); targeted ones (class y+1) are held to their floor.
EVASION = [
    ("hopskipjump-l2", 600, 1.0, 1.5, 0.9),
    ("hopskipjump-linf", 1000, 0.2, 0.3, 0.9),
    ("boundary", 1000, 1.5, 2.0, 0.9),
    ("rays", 1000, 0.2, 0.3, 0.4),
    ("square-linf", 1000, 0.15, 0.25, 0.9),
    ("square-l2", 1000, 1.0, 2.0, 0.9),
    ("simba-pixel", 500, None, None, 0.9),
    ("simba-dct", 500, None, None, 0.9),
]

TARGETS = ["in-process"]


def _target(kind: str, digits: dict[str, Any], access: Access) -> InProcessTarget:
    if access is Access.LABEL:
        return ScoresForbidden(digits["model"], 64)
    return InProcessTarget(digits["model"], OutputKind.SCORES, 64)


@pytest.mark.parametrize("where", TARGETS)
@pytest.mark.parametrize(
    ("name", "budget", "eps", "eps_t", "floor_t"), EVASION, ids=[r[0] for r in EVASION]
)
@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_evasion(
    digits: dict[str, Any],
    where: str,
    name: str,
    budget: int,
    eps: float | None,
    eps_t: float | None,
    floor_t: float,
    targeted: bool,
) -> None:
    attack = registry("attacks").get(name)(eps=eps_t if targeted else eps)
    target = _target(where, digits, attack.access)
    idx = digits["correct"][:N_POINTS]
    y = digits["y_test"][idx]
    data = AttackData(
        space=digits["space"],
        x=digits["x_test"][idx],
        y=y,
        targets=(y + 1) % 10 if targeted else None,
    )
    oracle = Oracle(target, budget=N_POINTS * budget)
    result = attack.run(oracle, data, budget=budget, seed=1)

    assert result.total_queries == oracle.queries == target.rows
    assert result.spent is not None and int(result.spent.sum()) == target.rows
    assert result.spent.max() <= budget
    floor = floor_t if targeted else 0.9
    assert result.metrics["success_rate"] >= floor, result.evidence()
    curve = result.series[0].y
    assert list(curve) == sorted(curve) and curve[-1] == pytest.approx(
        result.metrics["success_rate"]
    )
    finding = to_finding(result)
    assert finding.analyser == "attack" and finding.rule_id in {"A101", "A102"}
    assert finding.evidence["sample_size"] == N_POINTS


def test_evasion_is_reproducible_with_a_seed(digits: dict[str, Any]) -> None:
    idx = digits["correct"][:10]
    data = AttackData(space=digits["space"], x=digits["x_test"][idx])
    runs = []
    for _ in range(2):
        oracle = Oracle(InProcessTarget(digits["model"], OutputKind.SCORES, 64))
        runs.append(
            registry("attacks").get("square-linf")(eps=0.1).run(oracle, data, budget=200, seed=7)
        )
    assert np.array_equal(runs[0].spent, runs[1].spent)
    assert np.array_equal(runs[0].l2, runs[1].l2, equal_nan=True)


def test_transfer_from_a_label_only_copy(digits: dict[str, Any]) -> None:
    target = ScoresForbidden(digits["model"], 64)
    idx = digits["correct"][:N_POINTS]
    data = AttackData(space=digits["space"], x=digits["x_test"][idx], pool=digits["x_train"][:400])
    oracle = Oracle(target)
    result = (
        registry("attacks")
        .get("transfer-pgd")(eps=0.3, pool_budget=400)
        .run(oracle, data, budget=6, seed=0)
    )
    assert result.total_queries == oracle.queries == target.rows
    assert result.spent is not None
    assert int(result.spent.sum()) + result.metrics["surrogate_queries"] == target.rows
    assert result.metrics["success_rate"] >= 0.8, result.evidence()
    assert to_finding(result).rule_id == "A103"


EXTRACTION = ["extraction-natural", "extraction-random", "extraction-jacobian", "extraction-active"]


@pytest.mark.parametrize("where", TARGETS)
@pytest.mark.parametrize("output", [OutputKind.LABEL, OutputKind.SCORES], ids=["label", "scores"])
@pytest.mark.parametrize("name", EXTRACTION)
def test_extraction_fidelity_rises_with_budget(
    digits: dict[str, Any], where: str, output: OutputKind, name: str
) -> None:
    model = digits["model"]
    target = (
        ScoresForbidden(model, 64)
        if output is OutputKind.LABEL
        else InProcessTarget(model, output, 64)
    )
    x_eval, y_eval = digits["x_test"][:200], digits["y_test"][:200]
    data = AttackData(
        space=digits["space"],
        x=digits["x_train"],
        pool=digits["x_train"],
        x_eval=x_eval,
        y_eval=y_eval,
    )
    oracle = Oracle(target, budget=200 + 400)
    attack = registry("attacks").get(name)(checkpoints=(30, 400))
    result = attack.run(oracle, data, budget=400, seed=0)
    assert result.total_queries == oracle.queries == target.rows == 600
    fid = result.series[0].y
    assert fid[-1] > fid[0], fid
    assert result.metrics["fidelity"] == fid[-1]
    if name != "extraction-random":  # noise teaches little about digits, but still something
        assert result.metrics["fidelity"] >= 0.8
    assert to_finding(result).rule_id == "A201"


MEMBERSHIP = [
    ("membership-loss", {}),
    ("membership-shadow", {"shadows": 2}),
    ("membership-label-only", {}),
]


@pytest.mark.parametrize("where", TARGETS)
@pytest.mark.parametrize(("name", "kwargs"), MEMBERSHIP, ids=[m[0] for m in MEMBERSHIP])
def test_membership_auc_tracks_the_generalisation_gap(
    digits: dict[str, Any],
    membership_models: dict[str, Any],
    where: str,
    name: str,
    kwargs: dict[str, Any],
) -> None:
    attack = registry("attacks").get(name)(**kwargs)
    aucs = {}
    for which in ("overfit", "nogap"):
        model, members, nonmembers = membership_models[which]
        target = (
            ScoresForbidden(model, 64)
            if attack.access is Access.LABEL
            else InProcessTarget(model, OutputKind.SCORES, 64)
        )
        ax, ay = membership_models["attacker"]
        data = AttackData(space=digits["space"], x=ax, y=ay, members=members, nonmembers=nonmembers)
        oracle = Oracle(target)
        result = attack.run(oracle, data, budget=10_000, seed=0)
        assert result.total_queries == oracle.queries == target.rows
        aucs[which] = result.metrics["auc"]
        assert to_finding(result).rule_id == "A301"
    assert aucs["overfit"] > 0.58, aucs
    assert abs(aucs["nogap"] - 0.5) < 0.07, aucs
