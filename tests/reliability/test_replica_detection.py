"""An attack spread over two guard replicas on one Redis, and over several API keys, is
detected and blocked about as soon as the same attack against one replica.

Real processes: two `bastion guard serve` with the similarity and extraction
detectors and a Redis store, a real `redis-server`, bastion's SimBA attack over
HTTP sending each query to the next replica with the next principal's key.
Runs once the detectors (`bastion.detect`) are installed.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from bastion.errors import BastionError, TargetError
from bastion.target.base import OutputKind, QueryResult, TargetInfo
from tests.guard.servers import ThreadServer, model_app
from tests.reliability import processes as P
from tests.reliability.conftest import INFER, auth, write_keys

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.redis]
detect = pytest.importorskip("bastion.detect", reason="needs the detectors (bastion.detect)")


class Spread:
    """The attacker's target: each query to the next (replica, principal) in turn."""

    def __init__(self, guards: list[str], principals: list[str]) -> None:
        # query i goes to principal i mod P and replica i mod R: the principals see the same
        # queries whatever the number of replicas, so the two scenarios differ only in that
        self.turns = ((guards[i % len(guards)], principals[i % len(principals)])
                      for i in itertools.count())  # fmt: skip
        self.client = httpx.Client(timeout=10)
        self.sent = 0
        self.stopped_at: int | None = None

    def info(self) -> TargetInfo:
        return TargetInfo("cancer@guards", OutputKind.SCORES, n_classes=2, input_shape=(30,))

    def close(self) -> None:
        self.client.close()

    def query(self, x: Any) -> QueryResult:
        rows = []
        for row in np.asarray(x, dtype=np.float32):
            url, who = next(self.turns)
            self.sent += 1
            doc = {"inputs": [{"name": "input-0", "shape": [1, 30], "datatype": "FP32",
                               "data": row.tolist()}]}  # fmt: skip
            r = self.client.post(url + INFER, json=doc, headers=auth(who))
            if r.status_code != 200:
                self.stopped_at = self.stopped_at or self.sent
                raise TargetError(f"HTTP {r.status_code}: {r.json().get('error')}")
            out = {o["name"]: o for o in r.json()["outputs"]}
            rows.append(np.asarray(out["probabilities"]["data"], dtype=np.float64))
        scores = np.asarray(rows)
        return QueryResult(scores.argmax(1), scores, 0.0)


def _campaign(task: Any, target: Spread) -> bool:
    from bastion.attacks.base import AttackData
    from bastion.attacks.oracle import Oracle
    from bastion.attacks.space import InputSpace
    from bastion.registry import registry

    victims = importlib.import_module("bastion.detect.campaigns").victims
    x0 = task.x_test[victims(SimpleNamespace(task=task), 1)[0]]
    space = InputSpace.build(30, (task.lower.tolist(), task.upper.tolist()))
    attack = registry("attacks").get("simba-pixel")(eps=task.eps_l2)
    try:
        attack.run(Oracle(target, space=space), AttackData(space=space, x=x0[None]), budget=300,
                   seed=0)  # fmt: skip
    except BastionError:
        return True
    return False


def _extraction(task: Any, target: Spread, budget: int = 600) -> bool:
    """Random-query model extraction in batches of 10 (what the extraction detector watches)."""
    rng = np.random.default_rng(0)
    for _ in range(budget // 10):
        batch = task.lower + rng.random((10, task.lower.size)) * (task.upper - task.lower)
        try:
            target.query(batch)
        except TargetError:
            return True
    return False


@pytest.mark.parametrize("campaign", [_campaign, _extraction], ids=["evasion", "extraction"])
def test_an_attack_spread_over_replicas_and_keys_is_stopped_as_on_one_replica(
    tmp_path: Path, need_redis: None, campaign: Callable[[Any, Spread], bool]
) -> None:
    from bastion.detect.profile import fit_profile
    from bastion.detect.streams import load_task

    task = load_task("cancer")
    profile = tmp_path / "profile.json"
    fit_profile(task.x_fit, shape=task.shape).save(profile)
    keys = write_keys(tmp_path)

    def config(name: str, url: str) -> Path:
        cfg = {
            "model": {
                "name": "iris",
                "protocol": "oip",
                "inputs": [{"name": "input-0", "shape": [-1, 30], "dtype": "float32"}],
                "scores_output": "probabilities",
            },
            "store": {"kind": "redis", "url": url},
            "audit": {"path": str(tmp_path / f"{name}-audit.jsonl")},
            "policies": [
                {"kind": "api_key", "keys_file": str(keys), "reload_interval_s": 0},
                {
                    "kind": "detection",
                    "detectors": [
                        {"kind": "similarity", "profile": str(profile)},
                        {"kind": "extraction", "profile": str(profile)},
                    ],
                    "actions": [{"at": 2, "action": "flag"}, {"at": 6, "action": "block"}],
                },
                {"kind": "output_minimisation", "default": {"mode": "scores", "decimals": 4}},
            ],
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    principals = ["alice", "bob", "carol"]
    upstream_model = SimpleNamespace(predict_proba=task.predict_proba)
    stopped: dict[str, tuple[bool, int | None]] = {}
    with ThreadServer(model_app(upstream_model)) as upstream:
        for scenario, replicas in (("one", 1), ("spread", 2)):
            store = P.redis(tmp_path)  # a fresh Redis and fresh guards per scenario
            url = f"redis://127.0.0.1:{store.port}/0"
            guards = [
                P.guard(tmp_path, config(f"{scenario}{i}", url), upstream, name=f"{scenario}{i}")
                for i in range(replicas)
            ]
            with P.running(store, *guards):
                target = Spread([P.base(g) for g in guards], principals)
                stopped[scenario] = (campaign(task, target), target.stopped_at)
                target.close()
                assert all(g.alive() for g in guards)
    one, spread = stopped["one"], stopped["spread"]
    print(f"stopped after (one replica, spread over two): {one[1]}, {spread[1]} queries")
    assert one[0] and spread[0], stopped
    assert one[1] is not None and spread[1] is not None
    # as if on one replica: the spread attack is stopped within 1.5x the queries (+ a few)
    assert spread[1] <= 1.5 * one[1] + 6, stopped
