"""The shared table: every attack against every test target, asserting its measured effect.

Targets: the same real model in-process and behind loopback HTTP servers
(Open Inference Protocol v2 and plain JSON). Each row states the budget and
the success it is held to. Label-only attacks run against answers that raise
if their scores are read. Every run checks that the attack's reported query count equals the
oracle's, the ledger's and the model's (or server's) own count, and that no
point exceeded its budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bastion.attacks import Access, AttackData, AttackResult, Oracle
from bastion.attacks.public_model import load_public_model
from bastion.attacks.verdict import to_finding
from bastion.registry import registry
from bastion.target import OutputKind
from tests.attacks.attack_targets import TARGETS

N_POINTS = 30

# name, per-point budget, untargeted eps, targeted eps, targeted floor. Untargeted
# attacks must fool the undefended MLP on >= 90 % of points within budget and eps
# (None: any adversarial counts); targeted ones (class y+1) are held to their floor.
EVASION = [
    ("hopskipjump-l2", 1000, 1.25, 1.5, 0.9),
    ("hopskipjump-linf", 1000, 0.2, 0.3, 0.9),
    ("boundary", 1000, 1.5, 2.0, 0.9),
    ("rays", 1000, 0.2, 0.3, 0.4),
    ("square-linf", 1000, 0.15, 0.25, 0.9),
    ("square-l2", 1000, 1.0, 2.0, 0.9),
    ("simba-pixel", 500, None, None, 0.9),
    ("simba-dct", 500, None, None, 0.9),
]


def _output(access: Access) -> OutputKind:
    return OutputKind.LABEL if access is Access.LABEL else OutputKind.SCORES


def _check_counts(result: AttackResult, oracle: Oracle, truth: int) -> None:
    assert result.total_queries == oracle.queries == oracle.ledger.queries == truth


# targeted runs in-process only: the same code path over HTTP, and the table stays fast
MODES = [(where, False) for where in TARGETS] + [("in-process", True)]


@pytest.mark.parametrize(
    ("where", "targeted"), MODES, ids=[f"{w}-{'targeted' if t else 'untargeted'}" for w, t in MODES]
)
@pytest.mark.parametrize(
    ("name", "budget", "eps", "eps_t", "floor_t"), EVASION, ids=[r[0] for r in EVASION]
)
def test_evasion(
    digits: dict[str, Any],
    deploy: Any,
    where: str,
    name: str,
    budget: int,
    eps: float | None,
    eps_t: float | None,
    floor_t: float,
    targeted: bool,
) -> None:
    attack = registry("attacks").get(name)(eps=eps_t if targeted else eps)
    deployed = deploy(where, digits["model"], _output(attack.access))
    idx = digits["correct"][:N_POINTS]
    y = digits["y_test"][idx]
    data = AttackData(
        space=digits["space"],
        x=digits["x_test"][idx],
        y=y,
        targets=(y + 1) % 10 if targeted else None,
    )
    oracle = Oracle(deployed.target, budget=N_POINTS * budget)
    result = attack.run(oracle, data, budget=budget, seed=1)

    _check_counts(result, oracle, deployed.truth())
    assert result.spent is not None and int(result.spent.sum()) == result.total_queries
    assert result.spent.max() <= budget
    floor = floor_t if targeted else 0.9
    assert result.metrics["success_rate"] >= floor, result.evidence()
    curve = result.series[0].y
    assert list(curve) == sorted(curve)
    assert curve[-1] == pytest.approx(result.metrics["success_rate"])
    finding = to_finding(result)
    assert finding.analyser == "attack" and finding.rule_id in {"A101", "A102"}
    assert finding.evidence["sample_size"] == N_POINTS


def test_evasion_is_reproducible_with_a_seed(digits: dict[str, Any], deploy: Any) -> None:
    idx = digits["correct"][:10]
    data = AttackData(space=digits["space"], x=digits["x_test"][idx])
    runs = []
    for _ in range(2):
        oracle = Oracle(deploy("in-process", digits["model"], OutputKind.SCORES).target)
        attack = registry("attacks").get("square-linf")(eps=0.1)
        runs.append(attack.run(oracle, data, budget=200, seed=7))
    assert np.array_equal(runs[0].spent, runs[1].spent)
    assert np.array_equal(runs[0].l2, runs[1].l2, equal_nan=True)


@pytest.mark.parametrize("where", TARGETS)
def test_transfer_from_a_label_only_copy(digits: dict[str, Any], deploy: Any, where: str) -> None:
    deployed = deploy(where, digits["model"], OutputKind.LABEL)
    idx = digits["correct"][:N_POINTS]
    data = AttackData(space=digits["space"], x=digits["x_test"][idx], pool=digits["x_train"][:400])
    oracle = Oracle(deployed.target)
    attack = registry("attacks").get("transfer-pgd")(eps=0.3, pool_budget=400)
    result = attack.run(oracle, data, budget=6, seed=0)
    _check_counts(result, oracle, deployed.truth())
    assert result.spent is not None
    assert int(result.spent.sum()) + result.metrics["surrogate_queries"] == result.total_queries
    assert result.metrics["success_rate"] >= 0.8, result.evidence()
    assert to_finding(result).rule_id == "A103"


@pytest.mark.parametrize("where", TARGETS)
def test_transfer_from_a_public_model_the_manifest_names(
    digits: dict[str, Any], deploy: Any, public_weights: Path, public_mlp: Any, where: str
) -> None:
    """No query builds the copy: one label per point, then one adversarial each."""
    deployed = deploy(where, digits["model"], OutputKind.LABEL)
    idx = digits["correct"][:N_POINTS]
    assert idx.max() < 200  # the public model never saw these points
    x, y = digits["x_test"][idx], digits["y_test"][idx]
    public = load_public_model(public_weights)
    data = AttackData(space=digits["space"], x=x, public_model=public)
    oracle = Oracle(deployed.target)
    eps = 0.2
    result = registry("attacks").get("transfer-pgd")(eps=eps).run(oracle, data, budget=2, seed=0)
    _check_counts(result, oracle, deployed.truth())
    assert result.metrics["surrogate_queries"] == 0
    assert result.total_queries == 2 * N_POINTS
    assert result.params["surrogate"] == "public"
    # chance: random corners of the same L-inf ball, one per point
    noise = np.random.default_rng(0).choice([-eps, eps], size=x.shape)
    chance = float(np.mean(digits["model"].predict(np.clip(x + noise, 0.0, 1.0)) != y))
    assert result.metrics["success_rate"] >= max(0.6, chance + 0.4), (chance, result.evidence())
    finding = to_finding(result)
    assert finding.rule_id == "A103" and "crafted on public weights" in finding.message


EXTRACTION = [
    "extraction-natural",
    "extraction-random",
    "extraction-jacobian",
    "extraction-active",
]


@pytest.mark.parametrize("where", TARGETS)
@pytest.mark.parametrize("output", [OutputKind.LABEL, OutputKind.SCORES], ids=["label", "scores"])
@pytest.mark.parametrize("name", EXTRACTION)
def test_extraction_fidelity_rises_with_budget(
    digits: dict[str, Any], deploy: Any, where: str, output: OutputKind, name: str
) -> None:
    deployed = deploy(where, digits["model"], output)
    x_eval, y_eval = digits["x_test"][:200], digits["y_test"][:200]
    data = AttackData(
        space=digits["space"],
        x=digits["x_train"],
        pool=digits["x_train"],
        x_eval=x_eval,
        y_eval=y_eval,
    )
    oracle = Oracle(deployed.target, budget=200 + 400)
    attack = registry("attacks").get(name)(checkpoints=(30, 400), soft=True)
    result = attack.run(oracle, data, budget=400, seed=0)
    _check_counts(result, oracle, deployed.truth())
    assert result.total_queries == 600
    fid = result.series[0].y
    assert fid[-1] > fid[0], fid
    assert result.metrics["fidelity"] == fid[-1]
    if name != "extraction-random":  # noise teaches little about digits
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
    deploy: Any,
    where: str,
    name: str,
    kwargs: dict[str, Any],
) -> None:
    attack = registry("attacks").get(name)(**kwargs)
    aucs = {}
    for which in ("overfit", "nogap"):
        model, members, nonmembers = membership_models[which]
        deployed = deploy(where, model, _output(attack.access))
        ax, ay = membership_models["attacker"]
        data = AttackData(space=digits["space"], x=ax, y=ay, members=members, nonmembers=nonmembers)
        oracle = Oracle(deployed.target)
        result = attack.run(oracle, data, budget=10_000, seed=0)
        _check_counts(result, oracle, deployed.truth())
        aucs[which] = result.metrics["auc"]
        assert to_finding(result).rule_id == "A301"
    assert aucs["overfit"] > 0.58, aucs
    assert abs(aucs["nogap"] - 0.5) < 0.07, aucs


def test_hopskipjump_after_success_stops_when_the_perturbation_stops_shrinking(
    digits: dict[str, Any], deploy: Any
) -> None:
    idx = digits["correct"][:10]
    data = AttackData(space=digits["space"], x=digits["x_test"][idx])
    runs = {}
    for gain in (0.0, 0.05):
        target = deploy("in-process", digits["model"], OutputKind.LABEL).target
        attack = registry("attacks").get("hopskipjump-l2")
        runs[gain] = attack(eps=1.5, stop_on_success=False, min_gain=gain).run(
            Oracle(target), data, budget=600, seed=0
        )
    full, converged = runs[0.0], runs[0.05]
    assert full.spent is not None and converged.spent is not None
    assert full.spent.min() > 550  # min_gain 0: every point uses (almost) all of it
    assert converged.spent.mean() < 0.85 * full.spent.mean()
    assert converged.metrics["success_rate"] == full.metrics["success_rate"] == 1.0
    assert full.l2 is not None and converged.l2 is not None
    assert np.median(converged.l2) < 1.2 * np.median(full.l2)
