"""Detectors on several guard replicas judge as one: two detector instances sharing a store,
fed alternately, release exactly the evidence one instance fed everything releases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bastion.detect.extraction import ExtractionDetector, ExtractionOptions
from bastion.detect.fingerprint import FingerprintDetector, FingerprintOptions
from bastion.detect.profile import Profile
from bastion.detect.similarity import SimilarityDetector, SimilarityOptions
from bastion.detect.streams import Task
from bastion.guard.policies.detection import Observation
from bastion.guard.request import Prediction
from bastion.guard.stores.base import Store
from bastion.guard.stores.memory import MemoryStore
from bastion.guard.stores.sqlite import SQLiteStore

PRINCIPALS = ("alice", "bob", "carol")


def descent(task: Task, n: int, seed: int = 0) -> Iterator[np.ndarray]:
    """A score-attack-like chain: small steps on a few features at a time from one test point,
    one row per query."""
    rng = np.random.default_rng(seed)
    x = task.x_test[0].astype(np.float64).copy()
    span = task.upper - task.lower
    for _ in range(n):
        step = 0.02 * span * rng.choice([-1.0, 1.0], size=x.shape) * (rng.random(x.shape) < 0.1)
        x = np.clip(x + step, task.lower, task.upper)
        yield x[None]


def extraction(task: Task, n: int, seed: int = 0) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield task.lower + rng.random((1, task.lower.size)) * (task.upper - task.lower)


def evidence(
    task: Task, make: Callable[[], Any], stream: list[np.ndarray], replicas: int, store: Store
) -> list[tuple[str, float]]:
    """Per query (principal i mod 3, replica i mod R): the evidence released, as one list."""
    dets = [make() for _ in range(replicas)]
    out = []
    for i, x in enumerate(stream):
        who = PRINCIPALS[i % len(PRINCIPALS)]
        pred = Prediction.from_scores(task.predict_proba(x))
        ev = dets[i % replicas].observe(Observation(who, {"x": x}, pred, 1000.0 + i), store)
        out.append((who, round(ev.amount, 6) if ev else 0.0))
    return out


@pytest.fixture(params=["memory", "sqlite"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Store]:
    def make(name: str) -> Store:
        return MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / name)

    return make


@pytest.mark.parametrize("kind", ["similarity", "extraction", "fingerprint"])
def test_two_replicas_release_the_same_evidence_as_one(
    cancer: Task,
    cancer_profile: Path,
    digits: Task,
    shared: Callable[[str], Store],
    kind: str,
) -> None:
    profile = Profile.load(cancer_profile)
    task = digits if kind == "fingerprint" else cancer
    make: Callable[[], Any]
    if kind == "fingerprint":  # images; the salt is shared configuration, as it must be
        stream = list(descent(digits, 60))
        make = lambda: FingerprintDetector(FingerprintOptions(salt="shared-secret"))  # noqa: E731
    elif kind == "similarity":
        opts = SimilarityOptions(profile="-", trigger=3.2)
        stream = list(descent(cancer, 90))
        make = lambda: SimilarityDetector(opts, profile=profile)  # noqa: E731
    else:
        stream = list(extraction(cancer, 240))
        make = lambda: ExtractionDetector(ExtractionOptions(profile="-"), profile=profile)  # noqa: E731
    one = evidence(task, make, stream, 1, shared("one.db"))
    two = evidence(task, make, stream, 2, shared("two.db"))
    assert sum(a for _, a in one) > 0, "the stream must raise evidence for the test to mean much"
    assert two == one


def test_without_the_store_two_replicas_see_less(cancer: Task, cancer_profile: Path) -> None:
    """The control: replicas that do not share (persist off) release less, later."""
    profile = Profile.load(cancer_profile)
    stream = list(descent(cancer, 90))

    def make(persist: bool) -> Callable[[], Any]:
        opts = SimilarityOptions(profile="-", trigger=3.2, persist=persist)
        return lambda: SimilarityDetector(opts, profile=profile)

    one = evidence(cancer, make(True), stream, 1, MemoryStore())
    apart = evidence(cancer, make(False), stream, 2, MemoryStore())
    first = next(i for i, (_, a) in enumerate(one) if a > 0)
    first_apart = next((i for i, (_, a) in enumerate(apart) if a > 0), len(stream))
    assert first_apart > first


def test_a_restarted_replica_rebuilds_histories_and_campaigns_from_the_logs(
    cancer: Task, cancer_profile: Path, tmp_path: Path
) -> None:
    profile = Profile.load(cancer_profile)
    opts = SimilarityOptions(profile="-", trigger=3.2)
    stream = list(descent(cancer, 90))
    reference = evidence(cancer, lambda: SimilarityDetector(opts, profile=profile), stream, 1,
                         MemoryStore())  # fmt: skip
    store = SQLiteStore(tmp_path / "s.db")
    first = evidence(cancer, lambda: SimilarityDetector(opts, profile=profile), stream[:60], 1,
                     store)  # fmt: skip
    store.close()
    store = SQLiteStore(tmp_path / "s.db")  # a new process: empty memory, new origin
    det = SimilarityDetector(opts, profile=profile)
    rest = []
    for i, x in enumerate(stream[60:], start=60):
        who = PRINCIPALS[i % 3]
        pred = Prediction.from_scores(cancer.predict_proba(x))
        ev = det.observe(Observation(who, {"x": x}, pred, 1000.0 + i), store)
        rest.append((who, round(ev.amount, 6) if ev else 0.0))
    store.close()
    assert first + rest == reference


def test_fingerprints_are_shared_only_under_a_configured_salt() -> None:
    """A random salt differs per process: its fingerprints would mean nothing elsewhere."""
    assert FingerprintDetector(FingerprintOptions(salt="s")).shared
    assert not FingerprintDetector(FingerprintOptions()).shared
    assert not FingerprintDetector(FingerprintOptions(salt="s", persist=False)).shared


def test_threads_on_two_replicas_neither_lose_nor_duplicate_queries(
    cancer: Task, cancer_profile: Path, tmp_path: Path
) -> None:
    """The in-process wrapper may call a detector from several threads at once (SQLite lets
    them run while one waits on the file, which is where an unguarded cursor would race)."""
    import threading

    profile = Profile.load(cancer_profile)
    store = SQLiteStore(tmp_path / "s.db")
    opts = SimilarityOptions(profile="-", trigger=3.2)
    a, b = (SimilarityDetector(opts, profile=profile) for _ in range(2))
    xs = list(extraction(cancer, 200, seed=5))
    pred = Prediction.from_scores(cancer.predict_proba(xs[0]))

    def send(k: int) -> None:
        for i in range(k, len(xs), 4):
            (a if k % 2 else b).observe(Observation("p", {"x": xs[i]}, pred, 1.0 + i), store)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    last = Observation("p", {"x": xs[0] + 1.0}, pred, 500.0)
    a.observe(last, store)  # pulls everything b remembered, then adds its own
    store.close()
    assert a.tracks["p"].ring.size == len(xs) + 1
    assert a.global_ring.size == len(xs) + 1


@pytest.mark.redis
@pytest.mark.network
def test_replicas_share_again_after_redis_restarts_empty(
    cancer: Task, cancer_profile: Path, tmp_path: Path
) -> None:
    """A restarted Redis has lost the logs and numbers them anew; the replicas' old cursors
    must not make them skip the new log's first entries."""
    import shutil

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not on PATH (apt-get install redis-server)")
    pytest.importorskip("redis")
    from bastion.errors import StoreError
    from bastion.guard.stores.redis import RedisStore
    from tests.reliability import processes as P

    profile = Profile.load(cancer_profile)
    opts = SimilarityOptions(profile="-", trigger=3.2)
    a, b = (SimilarityDetector(opts, profile=profile) for _ in range(2))
    server = P.redis(tmp_path)
    xs = list(extraction(cancer, 80, seed=9))
    pred = Prediction.from_scores(cancer.predict_proba(xs[0]))
    with P.running(server):
        url = f"redis://127.0.0.1:{server.port}/0"
        sa, sb = RedisStore(url, timeout_s=0.3), RedisStore(url, timeout_s=0.3)

        def send(det: SimilarityDetector, store: Store, i: int) -> None:
            det.observe(Observation("p", {"x": xs[i]}, pred, 1.0 + i), store)

        for i in range(30):
            if i % 2 == 0:
                send(a, sa, i)
            else:
                send(b, sb, i)
        assert b.tracks["p"].ring.size == 30
        server.kill()
        with pytest.raises(StoreError):
            send(a, sa, 30)
        server.start()  # same port, empty
        for i in range(31, 71):  # the new logs grow past b's old cursors before b looks
            send(a, sa, i)
        send(b, sb, 71)
        assert b.tracks["p"].ring.size == 30 + 41  # every answered query, none skipped
        assert b.global_ring.size == 30 + 41
        sa.close()
        sb.close()


def test_re_sends_judged_on_another_replica_take_no_window_slot_there_either(
    cancer: Task, cancer_profile: Path, shared: Callable[[str], Store]
) -> None:
    """Each principal re-sends its input twice (principals take turns, replicas alternate):
    whether a query was a verbatim repeat travels with it, so every replica's window holds
    the same distinct inputs."""
    profile = Profile.load(cancer_profile)
    steps = list(descent(cancer, 60))
    stream = [x for k in range(0, 60, 3) for _ in range(3) for x in steps[k : k + 3]]
    opts = SimilarityOptions(profile="-", trigger=3.2)
    make = lambda: SimilarityDetector(opts, profile=profile)  # noqa: E731
    one = evidence(cancer, make, stream, 1, shared("one.db"))
    two = evidence(cancer, make, stream, 2, shared("two.db"))
    assert sum(a for _, a in one) > 0
    assert two == one
