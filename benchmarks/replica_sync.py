"""What sharing detector histories between guard replicas costs per query, in one run.

    PYTHONPATH=src python benchmarks/replica_sync.py [--calls 1000] [--history 2000]

For the similarity and extraction detectors (the guard's inline detectors) it
times `observe()` per query with the histories not shared (`persist: false`,
the cost of the detection itself) and shared through each store: in memory,
SQLite (a file in a temporary directory) and Redis (a `redis-server` started
on a free loopback port if the binary is on PATH; `apt-get install
redis-server`). Each store is measured with one replica, and with two
replicas (two detector instances on one store) taking turns, so every pull
brings back the other replica's last entries. Queries go to three principals
in turn, after `--history` queries already held. Prints the median and p99
milliseconds per query (each row run `--repeat` times, the run with the lowest
median kept: other jobs on the machine only ever add time), and the median
added by the sharing next to the unshared cost.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bastion.detect.extraction import ExtractionDetector, ExtractionOptions  # noqa: E402
from bastion.detect.profile import Profile, fit_profile  # noqa: E402
from bastion.detect.similarity import SimilarityDetector, SimilarityOptions  # noqa: E402
from bastion.detect.streams import Task, load_task  # noqa: E402
from bastion.guard.policies.detection import Observation  # noqa: E402
from bastion.guard.request import Prediction  # noqa: E402
from bastion.guard.stores.base import Store  # noqa: E402
from bastion.guard.stores.memory import MemoryStore  # noqa: E402
from bastion.guard.stores.sqlite import SQLiteStore  # noqa: E402

PRINCIPALS = ("alice", "bob", "carol")


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    proc = subprocess.Popen([*argv, "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def detector(kind: str, profile: Profile, persist: bool) -> Any:
    if kind == "similarity":
        return SimilarityDetector(SimilarityOptions(profile="-", persist=persist), profile=profile)
    return ExtractionDetector(ExtractionOptions(profile="-", persist=persist), profile=profile)


def run(
    task: Task,
    profile: Profile,
    kind: str,
    make_store: Callable[[], Store],
    persist: bool,
    replicas: int,
    history: int,
    calls: int,
) -> list[float]:
    """Seconds per observe() for `calls` queries after `history` queries are already held."""
    rng = np.random.default_rng(0)
    n = history + calls
    base = task.x_test[rng.integers(len(task.x_test), size=n)]
    xs = np.clip(base + rng.normal(0, 0.02, base.shape), task.lower, task.upper)
    labels = task.predict_proba(xs).argmax(1)
    store = make_store()
    dets = [detector(kind, profile, persist) for _ in range(replicas)]
    times = []
    try:
        for i in range(n):
            obs = Observation(
                PRINCIPALS[i % 3], {"x": xs[i][None]}, Prediction(labels[i : i + 1]), 1000.0 + i
            )
            t0 = time.perf_counter()
            dets[i % replicas].observe(obs, store)
            if i >= history:
                times.append(time.perf_counter() - t0)
    finally:
        store.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="cancer", help="cancer (tabular) or digits32 (images)")
    ap.add_argument("--history", type=int, default=2000, help="queries held before timing")
    ap.add_argument("--calls", type=int, default=1000, help="queries timed per row")
    ap.add_argument("--repeat", type=int, default=3, help="runs per row; the fastest is kept")
    args = ap.parse_args()
    task = load_task(args.task)
    profile = fit_profile(task.x_fit, shape=task.shape)
    tmp = Path(tempfile.mkdtemp(prefix="bastion-sync-"))
    print(
        f"{args.task}: {args.history} queries held, {args.calls} timed x{args.repeat}, "
        "3 principals; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    with redis_server() as redis_url:
        stores: list[tuple[str, Callable[[], Store], bool]] = [
            ("not shared", MemoryStore, False),
            ("memory", MemoryStore, True),
        ]
        counter = iter(range(1_000_000))
        stores.append(("sqlite", lambda: SQLiteStore(tmp / f"s{next(counter)}.db"), True))
        if redis_url is not None:
            from bastion.guard.stores.redis import RedisStore

            def fresh_redis() -> Store:
                s = RedisStore(redis_url, prefix=f"b{next(counter)}")
                return s

            stores.append(("redis", fresh_redis, True))
            ping = RedisStore(redis_url)
            rtt = []
            for _ in range(1000):
                t0 = time.perf_counter()
                ping.ping()
                rtt.append(time.perf_counter() - t0)
            ping.close()
            print(
                f"one Redis round trip (PING), p50: {1000 * float(np.median(rtt)):.3f} ms; "
                "sharing takes 2 per query for similarity (pull, push), 1 for extraction"
            )
        else:
            print("redis-server not on PATH: no Redis rows (apt-get install redis-server)")
        print(
            f"{'detector':<11} {'store':<11} {'replicas':>8} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'added p50 ms':>13}"
        )
        for kind in ("similarity", "extraction"):
            unshared = 0.0
            for label, make, persist in stores:
                for replicas in (1, 2) if persist else (1,):
                    runs = [
                        run(task, profile, kind, make, persist, replicas, args.history, args.calls)
                        for _ in range(args.repeat)
                    ]
                    t = min(runs, key=lambda r: float(np.median(r)))
                    p50, p99 = 1000 * float(np.median(t)), 1000 * float(np.quantile(t, 0.99))
                    if not persist:
                        unshared = p50
                    added = f"{p50 - unshared:+13.3f}" if persist else f"{'':>13}"
                    print(f"{kind:<11} {label:<11} {replicas:>8} {p50:8.3f} {p99:8.3f} {added}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
