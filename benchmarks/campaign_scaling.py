"""How a campaign scales with workers, on the local process pool and on Ray.

Run: PYTHONPATH=src python benchmarks/campaign_scaling.py [--points 64] [--budget 400]
(Ray rows need the `ray` extra: pip install 'bastion-ml[ray]'; they are skipped without it.)

The work is one real attack run: HopSkipJump (L2, label-only) against a
scikit-learn classifier, cut into chunks of 8 points, each chunk a task seeded
from the run's seed. Each executor runs the same tasks with 1 and with 2
workers; the table prints wall time, attacked points and model queries per
second, the speed-up over 1 worker, and whether the results are identical
to the first row's (they must be: seeds live in the tasks, not the workers).
Worker start-up is included, as a user would see it: a Ray row includes
starting the Ray workers' Python processes, not starting Ray itself.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from bastion.attacks.base import AttackData
from bastion.attacks.space import Domain, InputSpace
from bastion.campaign import LocalExecutor, ModelSpec, run_attacks
from bastion.testing.servers import iris_model


def _data(points: int) -> AttackData:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    pick = np.random.default_rng(0).choice(len(x), size=points, replace=True)
    space = InputSpace.build(4, (0.0, 8.0), domain=Domain.TABULAR)
    return AttackData(space=space, x=x[pick].astype(np.float64), y=y[pick].astype(np.int64))


@dataclass(frozen=True)
class Fitted:
    """A model factory that hands over a model fitted once in the driver (ours, not a file)."""

    model: Any

    def __call__(self) -> Any:
        return self.model


MODEL = ModelSpec(Fitted(iris_model()))


def _digest(run: Any) -> bytes:
    r = run.results[0]
    return b"".join(np.asarray(a).tobytes() for a in (r.success, r.queries, r.l2, r.adversarials))


def _measure(executor: Any, data: AttackData, budget: int, repeats: int = 1) -> tuple[float, Any]:
    """The best wall time of `repeats` runs (the host may be shared), and the last run."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run = _once(executor, data, budget)
        best = min(best, time.perf_counter() - start)
    return best, run


def _once(executor: Any, data: AttackData, budget: int) -> Any:
    return run_attacks(
        executor,
        MODEL,
        data,
        ["hopskipjump-l2"],
        budget=budget,
        seed=7,
        eps=0.05,
        chunk_size=8,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=64)
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs per row")
    args = parser.parse_args()
    data = _data(args.points)
    rows: list[tuple[str, int, float, Any]] = []
    for workers in (1, 2):
        wall, run = _measure(LocalExecutor(workers), data, args.budget, args.repeats)
        rows.append(("local", workers, wall, run))
    try:
        import ray
    except ImportError:
        ray = None
        print("ray not installed: Ray rows skipped (pip install 'bastion-ml[ray]')")
    if ray is not None:
        from bastion.campaign.rayexec import RayExecutor, import_path_env

        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            runtime_env={"env_vars": import_path_env()},
        )
        try:
            _measure(RayExecutor(workers=2), _data(8), 10)  # start the worker processes once
            for workers in (1, 2):
                wall, run = _measure(RayExecutor(workers=workers), data, args.budget, args.repeats)
                rows.append(("ray", workers, wall, run))
        finally:
            ray.shutdown()
    reference = _digest(rows[0][3])
    tasks = -(-args.points // 8)
    print(
        f"HopSkipJump-L2 on {args.points} points, budget {args.budget}/point, {tasks} tasks; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'executor':<8} {'workers':>7} {'wall s':>8} {'points/s':>9} {'queries/s':>10} "
        f"{'speed-up':>8} {'parallel':>8}  identical"
    )
    base: dict[str, float] = {}
    for name, workers, wall, run in rows:
        base.setdefault(name, wall)
        queries = run.results[0].total_queries
        busy = run.results[0].wall_time_s  # the chunks' own run times, summed
        same = "yes" if _digest(run) == reference else "NO"
        print(
            f"{name:<8} {workers:>7} {wall:>8.2f} {args.points / wall:>9.1f} "
            f"{queries / wall:>10.0f} {base[name] / wall:>7.2f}x {busy / wall:>8.2f}  {same}"
        )
    print(
        "parallel = the tasks' own run time summed / wall time: how many workers were busy at"
        " once (at most the workers, less when other jobs hold the cores)"
    )


if __name__ == "__main__":
    main()
