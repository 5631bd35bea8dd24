"""An attack spread over two guard replicas on one Redis, and over several API keys, is
blocked at the same query as the same attack against one replica.

Real processes: two `bastion guard serve` with the similarity and extraction
detectors and a Redis store, a real `redis-server`, and over HTTP bastion's
SimBA attack or a random-query extraction, query i sent with key i mod 3 to
replica i mod 2 (the one-replica run uses the same keys in the same order).
The extraction is also run from two attacker threads at once, so a replica
sometimes judges a query while another is in flight at the other replica.
Runs once the detectors (`bastion.detect`) are installed.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from bastion.errors import TargetError
from bastion.target.base import OutputKind, QueryResult, TargetInfo
from tests.guard.servers import ThreadServer, model_app
from tests.reliability import processes as P
from tests.reliability.conftest import INFER, auth, write_keys

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.redis]
detect = pytest.importorskip("bastion.detect", reason="needs the detectors (bastion.detect)")


class Spread:
    """The attacker's target: query i to principal i mod P on replica i mod R. Thread-safe,
    so several attacker threads can share it (each with its own connection)."""

    def __init__(self, guards: list[str], principals: list[str]) -> None:
        self.guards, self.principals = guards, principals
        self.sent = 0
        self.stopped_at: int | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []

    def info(self) -> TargetInfo:
        return TargetInfo("cancer@guards", OutputKind.SCORES, n_classes=2, input_shape=(30,))

    def close(self) -> None:
        for c in self._clients:
            c.close()

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(timeout=10)
            with self._lock:
                self._clients.append(client)
        return client

    def query(self, x: Any) -> QueryResult:
        rows = []
        for row in np.asarray(x, dtype=np.float32):
            with self._lock:
                if self.stopped_at is not None:
                    raise TargetError("stopped")
                i = self.sent
                self.sent += 1
            url = self.guards[i % len(self.guards)]
            who = self.principals[i % len(self.principals)]
            doc = {"inputs": [{"name": "input-0", "shape": [1, 30], "datatype": "FP32",
                               "data": row.tolist()}]}  # fmt: skip
            r = self._client().post(url + INFER, json=doc, headers=auth(who))
            if r.status_code != 200:
                with self._lock:  # the first refusal, in the order the queries were sent
                    self.stopped_at = min(self.stopped_at or i + 1, i + 1)
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
    result = attack.run(
        Oracle(target, space=space), AttackData(space=space, x=x0[None]), budget=300, seed=0
    )
    return "stopped_by_endpoint" in result.params  # the endpoint stopped it, it says where


def _extraction(task: Any, target: Spread, budget: int = 600, clients: int = 1) -> bool:
    """Random-query model extraction in batches of 10 (what the extraction detector watches),
    from `clients` attacker threads at once."""
    rng = np.random.default_rng(0)
    batches = [
        task.lower + rng.random((10, task.lower.size)) * (task.upper - task.lower)
        for _ in range(budget // 10)
    ]
    stopped = threading.Event()

    def work(k: int) -> None:
        for batch in batches[k::clients]:
            try:
                target.query(batch)
            except TargetError:
                stopped.set()
                return

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stopped.is_set()


def _extraction_parallel(task: Any, target: Spread) -> bool:
    return _extraction(task, target, clients=2)


@pytest.mark.parametrize(
    ("campaign", "parallel"),
    [(_campaign, None), (_extraction, _extraction_parallel)],
    ids=["evasion", "extraction"],
)
def test_an_attack_spread_over_replicas_and_keys_is_stopped_as_on_one_replica(
    tmp_path: Path,
    need_redis: None,
    campaign: Callable[[Any, Spread], bool],
    parallel: Callable[[Any, Spread], bool] | None,
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
    scenarios = [("one", 1, campaign), ("spread", 2, campaign)]
    if parallel is not None:
        scenarios.append(("parallel", 2, parallel))
    stopped: dict[str, tuple[bool, int | None]] = {}
    with ThreadServer(model_app(upstream_model)) as upstream:
        for scenario, replicas, attack in scenarios:
            store = P.redis(tmp_path)  # a fresh Redis and fresh guards per scenario
            url = f"redis://127.0.0.1:{store.port}/0"
            guards = [
                P.guard(tmp_path, config(f"{scenario}{i}", url), upstream, name=f"{scenario}{i}")
                for i in range(replicas)
            ]
            with P.running(store, *guards):
                target = Spread([P.base(g) for g in guards], principals)
                stopped[scenario] = (attack(task, target), target.stopped_at)
                target.close()
                assert all(g.alive() for g in guards)
    print("stopped after (queries):", {k: v[1] for k, v in stopped.items()})
    assert all(done and at is not None for done, at in stopped.values()), stopped
    one = stopped["one"][1]
    assert one is not None
    # the attacker waits for each answer, so every replica judges each query on all earlier
    # ones: the spread attack is stopped at the same query as on one replica (+2 slack)
    assert stopped["spread"][1] is not None and stopped["spread"][1] <= one + 2, stopped
    if campaign is _campaign:  # the other keys' queries counted: the global index linked them
        logs = "".join(f.read_text() for f in tmp_path.glob("spread*-audit.jsonl"))
        assert "cross_principal" in logs
    if parallel is not None:
        # two attacker threads: when a replica judges a query, the other thread's query may be
        # in flight at the other replica, unseen (at most 1 per thread, +5% for the checks
        # that fall on a different query then)
        at = stopped["parallel"][1]
        assert at is not None and at <= 1.05 * one + 2, stopped
