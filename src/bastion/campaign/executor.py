"""Map independent, picklable tasks to results: on local processes, or on Ray.

An audit or a campaign is made of pieces that do not talk to each other (one
attack on one chunk of samples, one file to scan, one system's probes). The
executor only runs them: it streams an event per task to a progress callback,
retries a task whose worker died (and a task that failed for an operational
reason, such as a refused connection), and returns the results in task order,
so the caller's result never depends on which worker finished first. Every
seed lives inside the task, so the same tasks give the same results on any
executor and any number of workers.

The local executor is a process pool. Python's pool breaks as a whole when one
worker dies; the executor then starts a new pool and resubmits the unfinished
tasks (each charged one attempt, since the pool cannot say whose worker died).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from bastion.errors import BastionError, OperationalError, TaskFailed, UsageError

__all__ = [
    "Executor",
    "Failure",
    "LocalExecutor",
    "Progress",
    "Task",
    "TaskEvent",
    "make_executor",
    "run_task",
]

EventKind = Literal["submitted", "done", "retry", "failed"]


@runtime_checkable
class Task(Protocol):
    """A picklable unit of work. `key` names it in progress and errors."""

    @property
    def key(self) -> str: ...

    def __call__(self) -> Any: ...


@dataclass(frozen=True)
class TaskEvent:
    """One step of one task, in the order the driver saw it."""

    kind: EventKind
    index: int
    key: str
    attempt: int
    done: int
    total: int
    detail: str = ""


Progress = Callable[[TaskEvent], None]


@dataclass(frozen=True)
class Failure:
    """A task's exception as plain data: bastion's errors do not all survive pickling."""

    type_name: str
    message: str
    hint: str | None
    operational: bool
    usage: bool

    def error(self) -> Exception:
        if self.usage:
            return UsageError(self.message, hint=self.hint)
        return RuntimeError(f"{self.type_name}: {self.message}")


def one_thread_per_worker() -> None:
    """Pool initialiser: one BLAS/OpenMP thread per worker process.

    Several workers that each start a thread per core fight over the same cores
    (two workers on two cores ran slower than one); Ray sets the same limit for
    its workers.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return
    threadpool_limits(1)


def run_task(task: Task) -> Any:
    """The function a worker runs; module-level so every pool can pickle it.

    Exceptions come back as a `Failure` value, so the driver decides about retries
    the same way on every executor.
    """
    try:
        return task()
    except (BastionError, OSError) as exc:
        return Failure(
            type(exc).__name__,
            getattr(exc, "message", str(exc)),
            getattr(exc, "hint", None),
            operational=isinstance(exc, OperationalError | OSError),
            usage=isinstance(exc, UsageError),
        )


@runtime_checkable
class Executor(Protocol):
    name: str
    workers: int

    def map(
        self, tasks: Sequence[Task], *, progress: Progress | None = None, retries: int = 2
    ) -> list[Any]: ...

    def close(self) -> None: ...


class Attempts:
    """Attempts, results and events for one `map` call, shared by both executors."""

    def __init__(self, tasks: Sequence[Task], progress: Progress | None, retries: int) -> None:
        if retries < 0:
            raise UsageError(f"retries must be 0 or more, got {retries}")
        self.tasks = list(tasks)
        self.progress = progress
        self.retries = retries
        self.attempts = [0] * len(self.tasks)
        self.results: list[Any] = [None] * len(self.tasks)
        self.done = 0

    def emit(self, kind: EventKind, index: int, detail: str = "") -> None:
        if self.progress is not None:
            event = TaskEvent(
                kind,
                index,
                self.tasks[index].key,
                self.attempts[index],
                self.done,
                len(self.tasks),
                detail,
            )
            self.progress(event)

    def start(self, index: int) -> None:
        self.attempts[index] += 1
        self.emit("submitted", index)

    def finish(self, index: int, value: Any) -> bool:
        """Record a value; False (after deciding about a retry) when it is a `Failure`."""
        if isinstance(value, Failure):
            return self.failed(index, value, lost_worker=False)
        self.results[index] = value
        self.done += 1
        self.emit("done", index)
        return True

    def failed(self, index: int, failure: Failure | None, *, lost_worker: bool) -> bool:
        """False when the task gets another attempt; raises when it has none left."""
        if lost_worker or failure is None:
            what, operational = "its worker died", True
        else:
            what, operational = f"{failure.type_name}: {failure.message}", failure.operational
        if operational and self.attempts[index] <= self.retries:
            self.emit("retry", index, what)
            return False
        self.emit("failed", index, what)
        key = self.tasks[index].key
        if failure is not None and not operational:
            raise failure.error()
        raise TaskFailed(
            f"task {key!r} failed {self.attempts[index]} time(s); last: {what}",
            key=key,
            attempts=self.attempts[index],
            hint="check the target and the workers, or raise the retries",
        )


class LocalExecutor:
    """A pool of local processes (default: one per CPU)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise UsageError(f"--workers must be at least 1, got {workers}")
        self.workers = workers or os.cpu_count() or 1

    def map(
        self, tasks: Sequence[Task], *, progress: Progress | None = None, retries: int = 2
    ) -> list[Any]:
        book = Attempts(tasks, progress, retries)
        pending = list(range(len(book.tasks)))
        while pending:
            pending = self._round(book, pending)
        return book.results

    def _round(self, book: Attempts, indexes: list[int]) -> list[int]:
        """Run `indexes` on a fresh pool; return the ones to run again on another pool."""
        again: list[int] = []
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(indexes)), initializer=one_thread_per_worker
        )
        try:
            running: dict[Future[Any], int] = {}
            for i in indexes:
                book.start(i)
                running[pool.submit(run_task, book.tasks[i])] = i
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = running.pop(fut)
                    exc = fut.exception()
                    if isinstance(exc, BrokenProcessPool):
                        if not book.failed(i, None, lost_worker=True):
                            again.append(i)
                    elif exc is not None:
                        raise exc  # a bug in a task, not a reason to retry
                    elif not book.finish(i, fut.result()):
                        # an operational failure: the pool is healthy, try again on it
                        book.start(i)
                        running[pool.submit(run_task, book.tasks[i])] = i
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if again:
            time.sleep(0.05)
        return sorted(again)

    def close(self) -> None:
        """Nothing outlives `map`: every pool is shut down when its round ends."""


def make_executor(
    name: str = "local", *, workers: int | None = None, address: str | None = None
) -> Executor:
    """The executor named on the command line (`--executor local|ray`)."""
    if name == "local":
        if address is not None:
            raise UsageError("--address is for --executor ray", hint="drop --address")
        return LocalExecutor(workers)
    if name == "ray":
        from bastion.campaign.rayexec import RayExecutor

        return RayExecutor(address=address, workers=workers)
    raise UsageError(f"unknown executor {name!r}", hint="local or ray")
