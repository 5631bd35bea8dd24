"""End to end on loopback: a real model server, the guard proxy with the detectors in front,
bastion's attack over HTTP as one API key, ordinary traffic as another."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from bastion.attacks.base import AttackData
from bastion.attacks.oracle import Oracle
from bastion.detect.streams import Task
from bastion.errors import TargetError
from bastion.guard import Guard, load_config
from bastion.guard.adapters.proxy import GuardProxy
from bastion.registry import registry
from bastion.target.base import OutputKind, QueryResult, TargetInfo
from tests.guard.conftest import auth, key_entry, token
from tests.guard.servers import ThreadServer, model_app

pytestmark = pytest.mark.network


def _config(cancer_profile: Path, tmp_path: Path, detection: dict[str, Any]) -> Path:
    keys = tmp_path / "keys.yaml"
    names = ("alice", "carol", "rita")
    keys.write_text(yaml.safe_dump({"keys": [key_entry(n) for n in names]}))
    cfg = {
        "model": {
            "name": "iris",
            "protocol": "oip",
            "inputs": [{"name": "input-0", "shape": [-1, 30], "dtype": "float32"}],
        },
        "store": {"kind": "sqlite", "path": str(tmp_path / "state.db")},
        "audit": {"path": str(tmp_path / "audit.jsonl")},
        "policies": [
            {"kind": "api_key", "keys_file": str(keys), "reload_interval_s": 0},
            {
                "kind": "detection",
                "detectors": [
                    {"kind": "similarity", "profile": str(cancer_profile)},
                    {"kind": "extraction", "profile": str(cancer_profile)},
                ],
                **detection,
            },
            {"kind": "output_minimisation", "default": {"mode": "scores", "decimals": 4}},
        ],
    }
    path = tmp_path / "guard.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@contextmanager
def _serving(cancer: Task, path: Path) -> Iterator[tuple[str, Guard]]:
    model = SimpleNamespace(predict_proba=cancer.predict_proba)
    guard = Guard(load_config(path))
    with (
        ThreadServer(model_app(model)) as upstream,
        ThreadServer(GuardProxy(guard, upstream), lifespan="on") as base,
    ):
        yield base, guard


@pytest.fixture
def guarded(cancer: Task, cancer_profile: Path, tmp_path: Path) -> Iterator[tuple[str, Guard]]:
    actions = [{"at": 2, "action": "flag"}, {"at": 6, "action": "block"}]
    with _serving(cancer, _config(cancer_profile, tmp_path, {"actions": actions})) as served:
        yield served


def _oip(x: Any) -> dict[str, Any]:
    a = np.asarray(x, dtype=np.float32)
    return {"inputs": [{"name": "input-0", "shape": list(a.shape), "datatype": "FP32",
                        "data": a.ravel().tolist()}]}  # fmt: skip


class _OipClient:
    """The attacker's side: OIP v2 over HTTP with an API key (the guard exposes only infer)."""

    def __init__(self, base: str, key: str) -> None:
        self.client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"})

    def info(self) -> TargetInfo:
        return TargetInfo("cancer@guard", OutputKind.SCORES, n_classes=2, input_shape=(30,))

    def query(self, x: Any) -> QueryResult:
        r = self.client.post("/v2/models/iris/infer", json=_oip(x))
        if r.status_code != 200:
            raise TargetError(f"HTTP {r.status_code}: {r.json().get('error')}")
        out = {o["name"]: o for o in r.json()["outputs"]}
        p = np.asarray(out["probabilities"]["data"], dtype=np.float64).reshape(len(x), -1)
        return QueryResult(p.argmax(1), p, r.elapsed.total_seconds())

    def close(self) -> None:
        self.client.close()


def test_attack_over_http_is_detected_and_blocked_while_a_benign_user_is_served(
    guarded: tuple[str, Guard], cancer: Task, tmp_path: Path
) -> None:
    base, guard = guarded
    target = _OipClient(base, token("alice"))
    from bastion.detect.campaigns import victims

    x0 = cancer.x_test[victims(SimpleNamespace(task=cancer), 1)[0]]  # type: ignore[arg-type]
    from bastion.attacks.space import InputSpace

    space = InputSpace.build(30, (cancer.lower.tolist(), cancer.upper.tolist()))
    # the guard blocks the campaign; the attack reports the stop and what it won until then
    result = (
        registry("attacks")
        .get("simba-pixel")(eps=cancer.eps_l2)
        .run(Oracle(target, space=space), AttackData(space=space, x=x0[None]), budget=300, seed=0)
    )
    target.close()
    assert "403: principal_blocked" in result.params["stopped_by_endpoint"]
    assert result.metrics["success_rate"] == 0.0
    state = guard.store.get_state("alice")
    assert state.evidence.get("similarity", 0) > 0
    assert state.active_action() == "block"
    with httpx.Client(base_url=base) as c:
        r = c.post("/v2/models/iris/infer", json=_oip(x0[None]),
                   headers={"Authorization": f"Bearer {token('alice')}"})  # fmt: skip
        assert r.status_code == 403 and r.json()["error"] == "principal_blocked"
        for row in cancer.x_test[:25]:  # an ordinary user, different rows
            r = c.post("/v2/models/iris/infer", json=_oip(row[None]),
                       headers={"Authorization": f"Bearer {token('carol')}"})  # fmt: skip
            assert r.status_code == 200
    assert guard.store.get_state("carol").total == 0
    guard.close()
    audit = (tmp_path / "audit.jsonl").read_text()
    assert "detection:evidence=similarity:" in audit


def test_noise_and_review_actions_over_http_follow_the_evidence_of_one_principal(
    cancer: Task, cancer_profile: Path, tmp_path: Path
) -> None:
    """Degrade without a visible change of shape: the attacker keeps getting scores with the
    right label, but noisy ones, and a reviewer finds one case about it in the review desk."""
    actions = [
        {"at": 2, "action": "flag"},
        {"at": 3, "action": "review"},
        {"at": 4, "action": "noise"},
        {"at": 1000, "action": "block"},
    ]
    path = _config(cancer_profile, tmp_path, {"actions": actions, "noise": 0.1, "seed": 0})
    from bastion.attacks.space import InputSpace
    from bastion.detect.campaigns import victims

    x0 = cancer.x_test[victims(SimpleNamespace(task=cancer), 1)[0]]  # type: ignore[arg-type]
    truth = np.round(cancer.predict_proba(x0[None])[0], 4)
    space = InputSpace.build(30, (cancer.lower.tolist(), cancer.upper.tolist()))
    with _serving(cancer, path) as (base, guard):
        target = _OipClient(base, token("alice"))
        first = target.query(x0[None])
        assert np.allclose(first.scores[0], truth)  # type: ignore[index]
        # noise never blocks: the attack runs its whole budget against noisy scores
        registry("attacks").get("simba-pixel")(eps=cancer.eps_l2).run(
            Oracle(target, space=space), AttackData(space=space, x=x0[None]), budget=150, seed=0
        )
        assert guard.store.get_state("alice").active_action() == "noise"
        again = [target.query(x0[None]) for _ in range(4)]
        target.close()
        assert all(int(r.labels[0]) == int(truth.argmax()) for r in again)
        assert all(not np.allclose(r.scores, truth, atol=1e-3) for r in again)  # type: ignore[arg-type]
        with httpx.Client(base_url=base) as c:
            listed = c.get("/guard/review", headers=auth("rita")).json()["cases"]
            assert [k["principal"] for k in listed] == ["alice"]
            assert listed[0]["reason"] == "detection"
            assert listed[0]["model_output"]["evidence"]["similarity"] >= 3
            for row in cancer.x_test[:20]:  # another principal keeps exact scores
                r = c.post("/v2/models/iris/infer", json=_oip(row[None]), headers=auth("carol"))
                out = r.json()["outputs"]
                probs = next(o for o in out if o["name"] == "probabilities")["data"]
                assert np.allclose(probs, np.round(cancer.predict_proba(row[None])[0], 4))
        assert guard.store.get_state("carol").total == 0
    guard.close()


@pytest.mark.parametrize("attack", ["art-hopskipjump", "art-boundary"])
def test_art_attacks_over_http_are_detected_and_blocked(
    attack: str, guarded: tuple[str, Guard], cancer: Task, tmp_path: Path
) -> None:
    """An independent implementation, as a user would run it: ART's label-only attacks with
    a classifier whose predictions are HTTP calls to the guarded server. The guard must block
    the key before the attack has spent a tenth of its budget, without having told it why."""
    pytest.importorskip("art")
    from art.estimators.classification import BlackBoxClassifierNeuralNetwork

    from bastion.detect.campaigns import seeded_art, victims

    base, guard = guarded
    target = _OipClient(base, token("alice"))
    # a point of the class random points rarely get: ART starts from a random point of another
    # class, and from the other class's points it finds none and gives up (104 queries)
    ours = SimpleNamespace(task=cancer)
    i = next(j for j in victims(ours, 20) if cancer.y_test[j] == 1)  # type: ignore[arg-type]
    sent = 0

    def predict(x: Any) -> Any:
        nonlocal sent
        sent += len(x)
        return np.eye(2)[target.query(np.asarray(x).reshape(len(x), -1)).labels]

    clf = BlackBoxClassifierNeuralNetwork(
        predict, (30,), 2, clip_values=(float(cancer.lower.min()), float(cancer.upper.max()))
    )
    if attack == "art-hopskipjump":
        from art.attacks.evasion import HopSkipJump

        atk: Any = HopSkipJump(clf, max_iter=20, max_eval=200, init_eval=20, verbose=False)
    else:
        from art.attacks.evasion import BoundaryAttack

        atk = BoundaryAttack(clf, targeted=False, max_iter=200, num_trial=10, verbose=False)
    with seeded_art(i), pytest.raises(TargetError, match="403"):
        atk.generate(cancer.x_test[i][None].astype(np.float32))
    target.close()
    state = guard.store.get_state("alice")
    assert state.active_action() == "block"
    assert state.evidence.get("similarity", 0) > 0
    assert sent < 200  # unguarded, it sends 1,460 (HopSkipJump) or 5,940 (Boundary) and wins
    guard.close()
    assert "detection:evidence=similarity:" in (tmp_path / "audit.jsonl").read_text()
