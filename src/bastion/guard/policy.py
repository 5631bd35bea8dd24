"""The policy plugin protocol and how `guard.yaml`'s `policies:` list becomes policy objects.

A policy sees each request before the model (`on_request`) and each answer
after it (`on_response`), and returns allow, deny or transform. A plugin is a
class in the `policies` registry with a pydantic `Options` model (extra keys
forbidden) and a constructor `(options, env)`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from bastion.errors import ConfigError, PluginError
from bastion.guard.config import GuardConfig, config_error
from bastion.guard.request import Allow, Deny, Prediction, Request, Verdict
from bastion.guard.stores.base import Store
from bastion.registry import registry

__all__ = [
    "FailMode",
    "GuardEnv",
    "Policy",
    "PolicyBase",
    "PolicyOptions",
    "build_policies",
    "store_unavailable",
]

log = logging.getLogger("bastion.guard")

FailMode = Literal["closed", "open"]


class PolicyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class GuardEnv:
    """What a policy may use: the whole config (model spec, paths) and the shared store."""

    config: GuardConfig
    store: Store


class Policy(Protocol):
    name: str

    def on_request(self, request: Request) -> Verdict: ...

    def on_response(self, request: Request, prediction: Prediction) -> Verdict: ...


class PolicyBase:
    """Allows everything; subclasses override the phase they act in."""

    name: ClassVar[str] = "policy"
    Options: ClassVar[type[PolicyOptions]] = PolicyOptions

    def on_request(self, request: Request) -> Verdict:
        return Allow()

    def on_response(self, request: Request, prediction: Prediction) -> Verdict:
        return Allow()


def store_unavailable(policy: str, mode: FailMode, exc: Exception) -> Verdict:
    """Apply the configured failure mode, with a log line and a metric either way."""
    from bastion.guard.metrics import STORE_ERRORS

    STORE_ERRORS.labels(policy=policy, mode=mode).inc()
    log.warning("store unavailable in policy %s (failing %s): %s", policy, mode, exc)
    if mode == "open":
        return Allow()
    return Deny(
        503,
        "store_unavailable",
        "the guard's state store is unavailable; try again shortly",
        headers={"Retry-After": "1"},
    )


def build_policies(env: GuardEnv) -> list[Policy]:
    out: list[Policy] = []
    source = env.config.source
    for i, entry in enumerate(env.config.policies):
        kind = entry.get("kind")
        if not isinstance(kind, str):
            line, col = source.locate(("policies", i))
            raise ConfigError(
                "each policy needs a 'kind'",
                path=str(source.path) if source.path else None,
                line=line,
                column=col,
                field=f"policies.{i}",
                hint=f"one of: {', '.join(registry('policies').names())}",
            )
        try:
            factory: Any = registry("policies").get(kind)
        except PluginError as exc:
            line, col = source.locate(("policies", i, "kind"))
            raise ConfigError(
                f"unknown policy kind {kind!r}",
                path=str(source.path) if source.path else None,
                line=line,
                column=col,
                field=f"policies.{i}.kind",
                hint=exc.hint,
            ) from None
        options_model: type[BaseModel] = getattr(factory, "Options", PolicyOptions)
        raw = {k: v for k, v in entry.items() if k != "kind"}
        try:
            options = options_model.model_validate(raw)
        except ValidationError as exc:
            raise config_error(exc, source, ("policies", i)) from None
        out.append(factory(options, env))
    return out
