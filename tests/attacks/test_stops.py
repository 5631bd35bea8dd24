"""Attacks against a real guarded endpoint: refused batches are split, stops keep what was won.

The model is served on loopback behind bastion's own guard (ASGI middleware),
which refuses batches over a row limit (413) and cuts a principal off after a
total quota (429): what an attacker meets in front of a careful deployment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from bastion.attacks import AttackData, Norm, Oracle
from bastion.attacks.oracle import HELD
from bastion.attacks.radius import success_radius
from bastion.attacks.verdict import to_finding
from bastion.guard import Guard, load_config
from bastion.guard.adapters.asgi import GuardMiddleware
from bastion.registry import registry
from bastion.target import HttpOptions, Ledger, oip_target
from bastion.testing import ServerConfig, model_app, serve_in_background
from tests.attacks.attack_targets import Counted

pytestmark = pytest.mark.network

TOKEN = "atk0001.secret-of-the-attacker"


@contextmanager
def guarded(
    model: Any, tmp_path: Path, *, max_rows: int, total: int, review_below: float | None = None
) -> Iterator[Any]:
    secret = TOKEN.partition(".")[2]
    keys = tmp_path / "keys.yaml"
    entry = {"id": "atk0001", "principal": "attacker", "scopes": ["predict"]}
    entry["sha256"] = hashlib.sha256(secret.encode()).hexdigest()
    keys.write_text(yaml.safe_dump({"keys": [entry]}))
    config = {
        "model": {
            "name": "model",
            "protocol": "oip",
            "inputs": [{"name": "input-0", "shape": [-1, 64], "dtype": "float64"}],
        },
        "store": {"kind": "memory"},
        "audit": {"path": str(tmp_path / "audit.jsonl")},
        "policies": [
            {"kind": "api_key", "keys_file": str(keys)},
            {"kind": "quota", "per_principal": [f"{total} total"]},
            {"kind": "input_validation", "max_rows": max_rows},
        ],
    }
    if review_below is not None:  # low-confidence answers wait for a human instead (202)
        config["policies"].append(  # type: ignore[attr-defined]
            {"kind": "decision", "confidence_below": review_below, "route": "review"}
        )
    path = tmp_path / "guard.yaml"
    path.write_text(yaml.safe_dump(config))
    guard = Guard(load_config(path))
    inner = model_app(model, ServerConfig.vulnerable(model_name="model", bounds=(-1e6, 1e6)))
    try:
        with serve_in_background(GuardMiddleware(inner, guard)) as url:
            target = oip_target(url, "model", options=HttpOptions(api_key=TOKEN))
            yield Ledger(target, retries=0, max_wait_s=0.1), inner.state.bastion
            target.close()
    finally:
        guard.close()


def test_refused_batches_are_split_and_every_input_is_charged(
    digits: dict[str, Any], tmp_path: Path
) -> None:
    with guarded(digits["model"], tmp_path, max_rows=8, total=10_000) as (ledger, served):
        oracle = Oracle(ledger, budget=1000)
        labels = oracle.labels(digits["x_test"][:50])
        assert labels.tolist() == digits["model"].predict(digits["x_test"][:50]).tolist()
        assert oracle.batch_size <= 8
        # the refused batches were sent and are charged, exactly as the ledger counts them
        assert oracle.queries == ledger.queries > 50
        assert served.inputs == 50  # the model itself answered each input once


def test_an_evasion_stopped_by_the_endpoint_reports_what_it_won(
    digits: dict[str, Any], tmp_path: Path
) -> None:
    idx = digits["correct"][:10]
    data = AttackData(space=digits["space"], x=digits["x_test"][idx], y=digits["y_test"][idx])
    with guarded(digits["model"], tmp_path, max_rows=256, total=200) as (ledger, served):
        attack = registry("attacks").get("square-linf")(eps=0.2)
        result = attack.run(Oracle(ledger, budget=10 * 500), data, budget=500, seed=0)
    assert "429" in result.params["stopped_by_endpoint"]
    assert result.metrics["stopped_by_endpoint"] == 1.0
    # what was won before the stop is measured, and every answer behind it was counted
    assert 0 < result.metrics["success_rate"] < 1.0
    assert result.total_queries == served.inputs <= 200
    assert ledger.queries > result.total_queries  # the refused batch was sent, and counted
    assert result.success is not None and result.adversarials is not None
    won = result.adversarials[result.success]
    assert (digits["model"].predict(won) != digits["y_test"][idx][result.success]).all()
    assert "The endpoint stopped the attack" in to_finding(result).message


def test_an_extraction_stopped_midway_keeps_its_curve(
    digits: dict[str, Any], tmp_path: Path
) -> None:
    data = AttackData(
        space=digits["space"],
        x=digits["x_train"],
        pool=digits["x_train"],
        x_eval=digits["x_test"][:100],
        y_eval=digits["y_test"][:100],
    )
    with guarded(digits["model"], tmp_path, max_rows=256, total=300) as (ledger, _):
        attack = registry("attacks").get("extraction-natural")(checkpoints=(50, 150, 400))
        result = attack.run(Oracle(ledger), data, budget=800, seed=0)
    assert result.series[0].x == (50.0, 150.0)  # 100 eval + 50 + 100 answered, then cut off
    assert result.metrics["fidelity"] == result.series[0].y[-1] > 0.5
    assert "stopped_by_endpoint" in result.params


def test_rows_held_for_review_are_dropped_and_the_others_answered(
    digits: dict[str, Any], tmp_path: Path
) -> None:
    x = digits["x_test"][:60]
    confidence = digits["model"].predict_proba(x).max(axis=1)
    unsure = confidence < 0.999
    assert 0 < unsure.sum() < 60  # both kinds of rows are in the batch
    with guarded(digits["model"], tmp_path, max_rows=256, total=10_000, review_below=0.999) as (
        ledger,
        _,
    ):
        from bastion.errors import EndpointError

        with pytest.raises(EndpointError, match="202"):  # by default a hold stops the call
            Oracle(ledger).labels(x)
        oracle = Oracle(ledger)
        labels = oracle.labels(x, unanswered=True)
    # one held row held the whole batch; row by row, the confident ones are answered
    assert (labels[unsure] == HELD).all()
    assert labels[~unsure].tolist() == digits["model"].predict(x[~unsure]).tolist()
    assert oracle.held == int(unsure.sum())
    assert oracle.queries == 60 + 60 and oracle.batch_size == 1  # the held batch was charged


def test_extraction_behind_a_review_queue_learns_from_the_answered_rows(
    digits: dict[str, Any], tmp_path: Path
) -> None:
    data = AttackData(
        space=digits["space"],
        x=digits["x_train"][:30],
        y=digits["y_train"][:30],
        pool=digits["x_train"][30:],
        x_eval=digits["x_test"][:100],
        y_eval=digits["y_test"][:100],
    )
    with guarded(digits["model"], tmp_path, max_rows=256, total=10_000, review_below=0.99) as (
        ledger,
        _,
    ):
        attack = registry("attacks").get("extraction-natural")(checkpoints=(100,))
        result = attack.run(Oracle(ledger), data, budget=300, seed=0)
    held = result.metrics["held_rows"]
    assert held > 0 and "stopped_by_endpoint" not in result.params
    # fidelity is measured on the evaluation rows that were answered, and says how many
    answered = int((digits["model"].predict_proba(data.x_eval).max(axis=1) >= 0.99).sum())
    assert result.n == result.series[0].sample_size == answered < 100
    assert result.metrics["fidelity"] > 0.8
    assert f"held {int(held)} rows without an answer" in to_finding(result).message


def test_success_radius_is_a_quarter_of_the_way_to_another_class() -> None:
    from bastion.attacks import Domain, InputSpace

    # two classes 4 apart on one axis; inside a class points sit 0.1 apart
    a = np.stack([np.arange(5) * 0.1, np.zeros(5)], 1)
    b = a + np.array([[4.0, 0.0]])
    x, y = np.concatenate([a, b]), np.array([0] * 5 + [1] * 5)
    space = InputSpace.build(2, (-10.0, 10.0), domain=Domain.TABULAR)
    data = AttackData(space=space, x=x, y=y)
    # nearest other-class distances are 3.6 .. 4.0 (median 3.8 over both classes)
    assert success_radius(data, Norm.L2) == pytest.approx(0.25 * 3.8)
    assert success_radius(data, Norm.LINF) == pytest.approx(0.25 * 3.8)
    assert success_radius(AttackData(space=space, x=a, y=np.zeros(5, int)), Norm.L2) is None


def test_extraction_never_measures_the_copy_on_its_own_training_rows(
    digits: dict[str, Any],
) -> None:
    from bastion.errors import UsageError
    from bastion.target import SklearnTarget

    x = digits["x_test"][:120]
    same = AttackData(space=digits["space"], x=x, pool=x, x_eval=x)
    attack = registry("attacks").get("extraction-natural")(checkpoints=(50,))
    with pytest.raises(UsageError, match="own training inputs"):
        attack.run(Oracle(SklearnTarget(digits["model"])), same, budget=100, seed=0)
    # overlapping rows are dropped from the pool: the copy never sees an evaluation row
    both = AttackData(space=digits["space"], x=x, pool=x, x_eval=x[:60])
    sent: list[np.ndarray] = []
    target = SklearnTarget(digits["model"])
    recorder = Counted(target)
    original = recorder.query

    def query(inputs: np.ndarray) -> Any:
        sent.append(np.asarray(inputs).reshape(len(inputs), -1).copy())
        return original(inputs)

    recorder.query = query  # type: ignore[method-assign]
    result = attack.run(Oracle(recorder), both, budget=60, seed=0)
    assert result.metrics["training_queries"] == 60
    training = np.concatenate(sent[1:])  # the first batch labels the evaluation rows
    eval_rows = {r.tobytes() for r in x[:60]}
    assert not any(r.tobytes() in eval_rows for r in training)
