"""Progress on stderr for long, staged work: one line per stage plus a bar for its steps."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from types import FrameType, TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bastion.errors import Interrupted

__all__ = ["StageProgress", "check_interrupted", "interruptible", "progress_bar"]


def progress_bar(console: Console | None = None) -> Progress:
    """The one progress bar style: on stderr, gone when done, results stay on stdout."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=True,
    )


_PENDING: list[str] = []


def check_interrupted() -> None:
    """Raise `Interrupted` if Ctrl-C came and its exception was lost on the way.

    A signal handler's exception surfaces in whatever code runs at that moment;
    inside a weakref callback or `__del__` (an import lock's, say) Python prints
    "Exception ignored" and carries on. Progress hooks call this between steps so
    such a Ctrl-C still stops the run at the next step.
    """
    if _PENDING:
        raise Interrupted(f"interrupted; {_PENDING[-1]}")


@contextlib.contextmanager
def interruptible(what: str) -> Iterator[None]:
    """Turn Ctrl-C into `Interrupted` (exit 130) with a message saying what is kept.

    click would otherwise swallow KeyboardInterrupt into a generic "Aborted!".
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        _PENDING.append(what)
        raise Interrupted(f"interrupted; {what}")

    _PENDING.clear()
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
        check_interrupted()  # the work ended, but a Ctrl-C during it was swallowed
    finally:
        signal.signal(signal.SIGINT, previous)
        _PENDING.clear()


class StageProgress:
    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self._bar = progress_bar(self.console)
        self._task: TaskID | None = None
        self._t0 = 0.0

    def __enter__(self) -> StageProgress:
        self._bar.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.__exit__(kind, exc, tb)

    def stage(self, name: str, event: str) -> None:
        check_interrupted()
        if event == "start":
            self._t0 = time.monotonic()
            self._task = self._bar.add_task(name, total=None)
        elif event == "done":
            if self._task is not None:
                self._bar.remove_task(self._task)
                self._task = None
            self.console.print(f"✓ {name} ({time.monotonic() - self._t0:.1f}s)", highlight=False)
        elif event == "resumed":
            self.console.print(f"↻ {name} (kept from the earlier run)", highlight=False)

    def step(self, what: str, index: int, total: int) -> None:
        check_interrupted()
        if self._task is not None:
            self._bar.update(self._task, completed=index, total=total, description=what)
