"""Shared pieces for the executor tests: a local Ray started once, real attack data."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bastion.attacks.base import AttackData
from bastion.attacks.space import Domain, InputSpace


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """A local Ray with two CPUs, for the whole session; shut down at the end."""
    ray = pytest.importorskip("ray")
    from bastion.campaign.rayexec import import_path_env

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        runtime_env={"env_vars": import_path_env()},
    )
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def iris_data() -> AttackData:
    """24 real iris points to attack, in the model's own input range."""
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    order = np.random.default_rng(3).permutation(len(x))
    pick, rest = order[:24], order[24:]
    space = InputSpace.build(4, (0.0, 8.0), domain=Domain.TABULAR)
    return AttackData(
        space=space,
        x=x[pick].astype(np.float64),
        y=y[pick].astype(np.int64),
        pool=x[rest[:60]].astype(np.float64),
        x_eval=x[rest[60:]].astype(np.float64),
        y_eval=y[rest[60:]].astype(np.int64),
    )


def kill_when_written(pid_file: Path, timeout_s: float = 60.0) -> Callable[[], int]:
    """Start a thread that SIGKILLs the pid written to `pid_file`; the joiner returns it."""
    seen: dict[str, int] = {}

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if pid_file.exists():
                pid = int(pid_file.read_text())
                seen["pid"] = pid
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()

    def join() -> int:
        thread.join(timeout_s)
        return seen.get("pid", -1)

    return join
