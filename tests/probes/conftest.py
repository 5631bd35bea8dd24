"""Real loopback servers over a real scikit-learn model, and endpoints that point at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from starlette.applications import Starlette

from bastion.probes import DeclaredControls, Endpoint
from bastion.target import HttpOptions
from bastion.testing import ServerConfig, iris_model, model_app, serve_in_background

Serve = Callable[[ServerConfig], AbstractContextManager[tuple[str, Starlette]]]


@pytest.fixture(scope="session")
def model() -> Any:
    return iris_model()


@contextmanager
def served(model: Any, config: ServerConfig) -> Iterator[tuple[str, Starlette]]:
    app = model_app(model, config)
    with serve_in_background(app) as url:
        yield url, app


def _endpoint_for(
    url: str, config: ServerConfig, declared: DeclaredControls | None = None, **kw: Any
) -> Endpoint:
    """How a user would point bastion at the server (iris: 4 features in [0, 8])."""
    return Endpoint(
        url=url if config.protocol == "oip" else url + "/predict",
        protocol=config.protocol,
        model_name=config.model_name if config.protocol == "oip" else None,
        options=HttpOptions(api_key=config.api_key, timeout_s=5),
        input_shape=None if config.protocol == "oip" else (4,),
        bounds=(0.0, 8.0),
        declared=declared or DeclaredControls(),
        **kw,
    )


@pytest.fixture(scope="session")
def serve(model: Any) -> Serve:
    """serve(config) -> context manager of (base url, app); app.state.bastion counts requests."""
    return lambda config: served(model, config)


@pytest.fixture(scope="session")
def endpoint_for() -> Callable[..., Endpoint]:
    """endpoint_for(url, config, declared=None) -> the Endpoint a user would probe."""
    return _endpoint_for
