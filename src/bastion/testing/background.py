"""Run an ASGI app with uvicorn on a loopback ephemeral port, in a thread, and stop it.

Tests and the demo need real servers that always go away: the context manager
stops the server and joins its thread even when the body raises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from bastion.errors import OperationalError

__all__ = ["serve_in_background"]


@contextmanager
def serve_in_background(app: Any, *, startup_timeout_s: float = 10.0) -> Iterator[str]:
    """Yield the base URL (`http://127.0.0.1:PORT`) of `app` served until the block ends."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        server_header=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="bastion-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout=5)
            raise OperationalError("the loopback test server did not start")
        time.sleep(0.01)
    try:
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
