"""State stores for the guard: memory, SQLite (default) and Redis, behind one protocol."""

from __future__ import annotations

from bastion.errors import ConfigError
from bastion.guard.config import GuardConfig
from bastion.guard.stores.base import PrincipalState, ReviewCase, Store
from bastion.registry import registry

__all__ = ["PrincipalState", "ReviewCase", "Store", "open_store"]


def open_store(config: GuardConfig) -> Store:
    """Build the configured store through the `stores` registry (so plugins can add kinds)."""
    spec = config.store
    factory = registry("stores").get(spec.kind)
    if spec.kind == "memory":
        store: Store = factory()
    elif spec.kind == "sqlite":
        store = factory(config.resolve(spec.path), timeout_s=spec.timeout_s)
    elif spec.kind == "redis":
        if not spec.url:
            raise ConfigError(
                "store kind 'redis' needs a url",
                field="store.url",
                path=str(config.source.path) if config.source.path else None,
                hint="e.g. url: redis://127.0.0.1:6379/0",
            )
        store = factory(spec.url, prefix=spec.prefix, timeout_s=spec.timeout_s)
    else:
        store = factory(spec)
    return store
