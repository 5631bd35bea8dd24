"""The runtime guard: the paper's short-term mitigations as policies in front of a live model.

A framework-free core (`Guard`) runs ordered policies around one model call
and writes one hash-chained audit record per request. Adapters put it in
front of a model: `wrap` (in-process), `GuardMiddleware` (ASGI) and the
reverse proxy (`bastion guard serve`).
"""

from bastion.guard.config import GuardConfig, load_config, parse_config
from bastion.guard.core import Guard, Outcome
from bastion.guard.request import Allow, Deny, Prediction, Principal, Request, Transform

__all__ = [
    "Allow",
    "Deny",
    "Guard",
    "GuardConfig",
    "Outcome",
    "Prediction",
    "Principal",
    "Request",
    "Transform",
    "load_config",
    "parse_config",
]
