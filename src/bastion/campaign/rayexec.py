"""The executor on a Ray cluster (extra `ray`): the same tasks, the same results.

Ray schedules the tasks; the executor keeps what it does for the local pool:
one event per task step, results in task order, and a retry of a task whose
worker (or node) died — done here rather than by Ray's own `max_retries`, so the
progress stream shows the retry and both executors count attempts alike.

Workers must be able to import bastion. A local Ray started here inherits the
driver's import path; on a cluster, install `bastion-ml[ray]` on every node (or
start the driver with a Ray runtime environment that ships it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bastion.campaign.executor import Attempts, Progress, Task, run_task
from bastion.errors import OperationalError, UsageError

__all__ = ["RayExecutor", "import_path_env"]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray", hint="pip install 'bastion-ml[ray]'") from None
    return ray


def import_path_env() -> dict[str, str]:
    """`PYTHONPATH` that lets a local Ray worker import this very bastion (source checkouts)."""
    here = str(Path(__file__).resolve().parents[2])
    parts = [here, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return {"PYTHONPATH": os.pathsep.join(dict.fromkeys(parts))}


def _lost_worker(ray: Any, exc: BaseException) -> bool:
    kinds = tuple(
        getattr(ray.exceptions, name)
        for name in (
            "WorkerCrashedError",
            "NodeDiedError",
            "ObjectLostError",
            "LocalRayletDiedError",
            "RayActorError",
        )
        if hasattr(ray.exceptions, name)
    )
    return isinstance(exc, kinds)


class RayExecutor:
    """Tasks as Ray tasks (one CPU each). Connects to `address`, or starts a local Ray."""

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None) -> None:
        ray = _ray()
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": "ERROR",
            }
            if address is None:
                kwargs["num_cpus"] = workers or os.cpu_count() or 1
                kwargs["runtime_env"] = {"env_vars": import_path_env()}
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise OperationalError(
                    f"cannot start or reach Ray at {address or 'a new local instance'}: {exc}",
                    hint="check --address (ray://HOST:10001 or auto) and that the cluster is up",
                ) from None
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = min(workers, cpus) if workers else cpus
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_task)

    def map(
        self, tasks: Sequence[Task], *, progress: Progress | None = None, retries: int = 2
    ) -> list[Any]:
        ray = _ray()
        book = Attempts(tasks, progress, retries)
        waiting = list(range(len(book.tasks)))[::-1]
        running: dict[Any, int] = {}
        while waiting or running:
            # at most `workers` tasks in flight, so a retry does not queue behind everything
            while waiting and len(running) < self.workers:
                i = waiting.pop()
                book.start(i)
                running[self._remote.remote(book.tasks[i])] = i
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                i = running.pop(ref)
                try:
                    value = ray.get(ref)
                except Exception as exc:
                    if not _lost_worker(ray, exc):
                        raise
                    if not book.failed(i, None, lost_worker=True):
                        waiting.append(i)
                    continue
                if not book.finish(i, value):
                    waiting.append(i)
        return book.results

    def close(self) -> None:
        """Shut down the Ray this executor started; leave a caller's Ray alone."""
        if self._started:
            ray = _ray()
            ray.shutdown()
            self._started = False
