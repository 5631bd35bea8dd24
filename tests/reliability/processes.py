"""Real processes for the reliability suite, each restartable on the same port.

Every process logs to a file (never an unread pipe, which would block a busy
server), and every one is stopped by the test that started it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.guard.servers import free_port, wait_http, wait_tcp

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))


class Process:
    """A child process that can be killed and started again on the same port."""

    def __init__(self, argv: list[str], port: int, log: Path, ready: Callable[[], None]) -> None:
        self.argv, self.port, self.log, self._ready = argv, port, log, ready
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, env=ENV, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            self._ready()
        except BaseException:
            self.stop()
            raise
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush — a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _weights() -> str:
    from tests.guard.servers import iris_model

    model = iris_model()
    return json.dumps({"coef": model.coef_.tolist(), "intercept": model.intercept_.tolist()})


def upstream(tmp: Path, port: int | None = None) -> Process:
    """The iris model of the guard tests, served by a stdlib process that restarts fast."""
    port = port or free_port()
    argv = [sys.executable, "-m", "tests.reliability.upstream", str(port), _weights()]
    url = f"http://127.0.0.1:{port}"
    return Process(argv, port, tmp / "upstream.log", lambda: wait_http(url + "/v2/health/ready"))


def guard(tmp: Path, config: Path, upstream_url: str, name: str = "guard") -> Process:
    port = free_port()
    argv = [sys.executable, "-m", "bastion", "guard", "serve", "--config", str(config)]
    argv += ["--upstream", upstream_url, "--port", str(port)]
    proc = Process(argv, port, tmp / f"{name}.log", lambda: None)
    proc._ready = lambda: wait_http(f"http://127.0.0.1:{port}/guard/healthz", proc=proc.proc)
    return proc


def redis(tmp: Path) -> Process:
    binary = shutil.which("redis-server")
    assert binary is not None
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return Process(argv, port, tmp / "redis.log", lambda: wait_tcp(port))


@contextmanager
def running(*procs: Process) -> Iterator[None]:
    try:
        for p in procs:
            if not p.alive():
                p.start()
        yield
    finally:
        for p in reversed(procs):
            p.stop()


def base(proc: Process) -> str:
    return f"http://127.0.0.1:{proc.port}"


@dataclass
class Load:
    """Requests sent by background threads until stopped; every answer is kept."""

    send: Callable[[httpx.Client, int], tuple[str, httpx.Response]]
    threads: int = 3
    answers: list[tuple[float, str, int, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _worker(self, worker: int) -> None:
        n = 0
        with httpx.Client(timeout=10.0) as client:
            while not self._stop.is_set():
                n += 1
                try:
                    kind, resp = self.send(client, worker * 1_000_000 + n)
                    try:
                        doc = resp.json()
                    except ValueError:
                        doc = None
                    with self._lock:
                        self.answers.append((time.monotonic(), kind, resp.status_code, doc))
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(f"{type(exc).__name__}: {exc}")

    @contextmanager
    def running(self) -> Iterator[Load]:
        pool = [threading.Thread(target=self._worker, args=(i,)) for i in range(self.threads)]
        for t in pool:
            t.start()
        try:
            yield self
        finally:
            self._stop.set()
            for t in pool:
                t.join(timeout=30)

    def since(self, t0: float, t1: float = float("inf")) -> list[tuple[float, str, int, Any]]:
        with self._lock:
            return [a for a in self.answers if t0 <= a[0] < t1]

    def statuses(self, kind: str | None = None) -> Counter[int]:
        with self._lock:
            return Counter(s for _, k, s, _ in self.answers if kind is None or k == kind)


def audit_records(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def audit_records_tolerant(path: Path) -> list[dict[str, Any]]:
    """The records that parse (a torn line left by a crash does not)."""
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def verify_log(*paths: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "bastion", "guard", "verify-log", *map(str, paths)]
    return subprocess.run(argv, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=60)
