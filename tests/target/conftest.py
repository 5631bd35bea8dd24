"""A real scikit-learn model, served for real on loopback when a test asks for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from starlette.applications import Starlette

from bastion.testing import ServerConfig, iris_model, model_app, serve_in_background

Serve = Callable[[ServerConfig], AbstractContextManager[tuple[str, Starlette]]]


@pytest.fixture(scope="session")
def model() -> Any:
    return iris_model()


@pytest.fixture
def serve(model: Any) -> Serve:
    @contextmanager
    def run(config: ServerConfig) -> Iterator[tuple[str, Starlette]]:
        app = model_app(model, config)
        with serve_in_background(app) as url:
            yield url, app

    return run
