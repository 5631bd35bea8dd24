"""Child processes the demo starts, always stopped: on success, on error and on Ctrl-C.

Each child runs in its own process group and announces its address with a
`READY <url>` line; `Supervisor` waits for that line (bounded), and on exit
terminates every group, escalating to SIGKILL if a child lingers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from bastion.errors import OperationalError

__all__ = ["Supervisor"]


def _child_env() -> dict[str, str]:
    """Children run this very bastion, with single-threaded BLAS (they share a small machine)."""
    import bastion

    env = dict(os.environ)
    here = str(Path(bastion.__file__).resolve().parents[1])
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


class Supervisor:
    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.children: list[subprocess.Popen[str]] = []
        self._logs: list[IO[str]] = []

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start(self, name: str, args: list[str], timeout_s: float = 60.0) -> str:
        """Start `python ARGS`; return the URL it announces."""
        self.logdir.mkdir(parents=True, exist_ok=True)
        log = (self.logdir / f"{name}.log").open("w", encoding="utf-8")
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, *args],
            env=_child_env(),
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.children.append(proc)
        found: list[str] = []

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("READY ") and not found:
                    found.append(line.split(None, 1)[1].strip())
            proc.stdout.close()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while not found:
            if proc.poll() is not None:
                raise OperationalError(
                    f"{name} exited with code {proc.returncode} before it was ready",
                    hint=f"see {self.logdir / (name + '.log')}",
                )
            if time.monotonic() > deadline:
                raise OperationalError(f"{name} did not start within {timeout_s:.0f}s")
            time.sleep(0.05)
        return found[0]

    def stop_all(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 5
        for proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.children.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
