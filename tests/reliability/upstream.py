"""A model server as its own process (so a test can SIGKILL it): `python -m tests.reliability.upstream PORT`."""

from __future__ import annotations

import sys

import uvicorn

from tests.guard.servers import iris_model, model_app

if __name__ == "__main__":
    uvicorn.run(
        model_app(iris_model()),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="error",
        access_log=False,
        lifespan="off",
    )
