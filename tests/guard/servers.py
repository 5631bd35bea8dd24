"""Real servers on loopback for the guard tests: a scikit-learn model behind Starlette, uvicorn
or the proxy's own front end in a background thread, a redis-server process, and `bastion guard
serve` processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[2]


def iris_model() -> LogisticRegression:
    x, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(x, y)


def model_app(model: Any, delay_s: float = 0.0, seen: dict[str, str] | None = None) -> Starlette:
    """OIP v2 infer at /v2/models/iris/infer and plain JSON at /predict; `seen` receives the
    headers of the last inference request (to check what the guard forwards)."""

    async def infer(request: Request) -> JSONResponse:
        if seen is not None:
            seen.clear()
            seen.update(request.headers)
        doc = await request.json()
        t = doc["inputs"][0]
        x = np.asarray(t["data"], dtype=np.float64).reshape(t["shape"])
        if delay_s:
            await asyncio.sleep(delay_s)
        p = model.predict_proba(x)
        return JSONResponse(
            {
                "model_name": "iris",
                "outputs": [
                    {
                        "name": "probabilities",
                        "shape": list(p.shape),
                        "datatype": "FP64",
                        "data": p.ravel().tolist(),
                    },
                    {
                        "name": "label",
                        "shape": [len(p)],
                        "datatype": "INT64",
                        "data": p.argmax(1).tolist(),
                    },
                    {"name": "internal_debug", "shape": [1], "datatype": "INT64", "data": [42]},
                ],
            }
        )

    async def predict(request: Request) -> JSONResponse:
        doc = await request.json()
        x = np.asarray(doc["instances"], dtype=np.float64)
        if delay_s:
            await asyncio.sleep(delay_s)
        p = model.predict_proba(x)
        return JSONResponse({"label": p.argmax(1).tolist(), "probabilities": p.tolist()})

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({"ready": True})

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "name": "iris",
                "platform": "sklearn",
                "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}],
            }
        )

    return Starlette(
        routes=[
            Route("/v2/models/iris/infer", infer, methods=["POST"]),
            Route("/predict", predict, methods=["POST"]),
            Route("/v2/health/ready", ready),
            Route("/v2/models/iris", metadata),
            Route("/", ready),
        ]
    )


class ThreadServer:
    """uvicorn on 127.0.0.1, ephemeral port, in a daemon thread; stopped on exit."""

    def __init__(self, app: Any, lifespan: str = "off") -> None:
        cfg = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="error",
            ws="none",
            lifespan=lifespan,
            access_log=False,
        )
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class ThreadFront:
    """The proxy's own front end (`bastion guard serve`'s default) on an ephemeral port, in a
    daemon thread with its own event loop; stopped (and the proxy closed) on exit."""

    def __init__(self, proxy: Any) -> None:
        from bastion.guard.adapters.listener import listen

        self.proxy = proxy
        self.sock = listen("127.0.0.1", 0)
        self.loop = asyncio.new_event_loop()
        self.stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()

    def _run(self) -> None:
        from bastion.guard.adapters.front import FrontServer

        async def main() -> None:
            self.stop = asyncio.Event()
            self.ready.set()
            await FrontServer(self.proxy).serve(self.sock, self.stop)

        self.loop.run_until_complete(main())
        self.loop.close()

    def __enter__(self) -> str:
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("the front end did not start")
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        if self.stop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(
    url: str, timeout_s: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"process exited with {proc.returncode}: "
                f"{proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def guard_process(
    config: Path,
    upstream: str,
    port: int | None = None,
    kill: bool = False,
    extra: tuple[str, ...] = (),
) -> Iterator[str]:
    """`python -m bastion guard serve` as a real process; yields its base URL.

    With `kill`, the process is ended by SIGKILL (a crash) instead of a clean stop;
    `extra` are more command-line options (e.g. `--server uvicorn`)."""
    port = port or free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bastion",
            "guard",
            "serve",
            "--config",
            str(config),
            "--upstream",
            upstream,
            "--port",
            str(port),
            *extra,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/guard/healthz", proc=proc)
        yield base
    finally:
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    binary = shutil.which("redis-server")
    assert binary is not None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_tcp(port)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)


def wait_tcp(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
