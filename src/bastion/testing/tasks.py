"""Campaign tasks for tests: one that a test can kill mid-run, one that fails on purpose.

They live in the library (not under tests/) so that Ray workers, which import
tasks by module name, can import them too.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import TargetError, UsageError

__all__ = ["FlakyTask", "SquareTask", "VictimTask"]


@dataclass(frozen=True)
class SquareTask:
    """Cheap, deterministic work: the square of `n`, and which process computed it."""

    n: int

    @property
    def key(self) -> str:
        return f"square-{self.n}"

    def __call__(self) -> tuple[int, int]:
        return self.n * self.n, os.getpid()


@dataclass(frozen=True)
class VictimTask:
    """On its first attempt, writes its worker's pid to `pid_file` and waits to be killed.

    Later attempts (the pid file exists) return at once, so a test proves the
    executor retried the task after its worker really died.
    """

    pid_file: str
    value: int = 7
    wait_s: float = 60.0

    @property
    def key(self) -> str:
        return "victim"

    def __call__(self) -> int:
        path = Path(self.pid_file)
        if path.exists():
            return self.value
        tmp = path.with_suffix(".tmp")
        tmp.write_text(str(os.getpid()))
        tmp.replace(path)
        time.sleep(self.wait_s)
        raise TargetError("the victim task was not killed in time")


@dataclass(frozen=True)
class FlakyTask:
    """Fails `failures` times with an operational error (counted in files), then succeeds."""

    counter_dir: str
    failures: int = 1
    usage_error: bool = False

    @property
    def key(self) -> str:
        return "flaky"

    def __call__(self) -> str:
        if self.usage_error:
            raise UsageError("this task is wrong in itself", hint="retrying will not help")
        seen = len(list(Path(self.counter_dir).glob("attempt-*")))
        Path(self.counter_dir, f"attempt-{seen}").write_text("")
        if seen < self.failures:
            raise TargetError(f"transient failure {seen + 1} of {self.failures}")
        return f"ok after {seen} failures"
