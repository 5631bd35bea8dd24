"""The runtime guard: the paper's short-term mitigations as policies in front of a live model.

A framework-free core (`Guard`) runs ordered policies around one model call
and writes one hash-chained audit record per request. Adapters put it in
front of a model: `wrap` (in-process), `GuardMiddleware` (ASGI) and the
reverse proxy (`bastion guard serve`). Names are imported lazily so that
`bastion guard verify-log` works without the `serve` extra installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.guard.adapters.asgi import GuardMiddleware
    from bastion.guard.adapters.wrap import wrap
    from bastion.guard.config import GuardConfig, load_config, parse_config
    from bastion.guard.core import Guard, Outcome
    from bastion.guard.request import Allow, Deny, Prediction, Principal, Request, Transform

__all__ = [
    "Allow",
    "Deny",
    "Guard",
    "GuardConfig",
    "GuardMiddleware",
    "Outcome",
    "Prediction",
    "Principal",
    "Request",
    "Transform",
    "load_config",
    "parse_config",
    "wrap",
]

_WHERE = {
    "Allow": "request",
    "Deny": "request",
    "Prediction": "request",
    "Principal": "request",
    "Request": "request",
    "Transform": "request",
    "GuardConfig": "config",
    "load_config": "config",
    "parse_config": "config",
    "Guard": "core",
    "Outcome": "core",
    "GuardMiddleware": "adapters.asgi",
    "wrap": "adapters.wrap",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bastion.guard' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bastion.guard.{module}"), name)
