"""Fixtures for the guard tests: keys, configs, a real model, real servers."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.guard import Guard, load_config
from bastion.guard.adapters.proxy import GuardProxy
from bastion.guard.stores.base import Store
from bastion.guard.stores.memory import MemoryStore
from bastion.guard.stores.sqlite import SQLiteStore
from tests.guard.servers import ThreadFront, ThreadServer, iris_model, model_app, redis_server

KEYS = {
    "alice": ("alice01.secret-alice", ["predict"]),
    "bob": ("bob0001.secret-bob", ["predict"]),
    "carol": ("carol01.secret-carol", ["predict", "scores"]),
    "rita": ("rita001.secret-rita", ["review"]),
}


def key_entry(principal: str) -> dict[str, Any]:
    token, scopes = KEYS[principal]
    key_id, _, secret = token.partition(".")
    return {
        "id": key_id,
        "principal": principal,
        "sha256": hashlib.sha256(secret.encode()).hexdigest(),
        "scopes": scopes,
    }


def token(principal: str) -> str:
    return KEYS[principal][0]


def auth(principal: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(principal)}"}


@pytest.fixture(scope="session")
def model() -> Any:
    return iris_model()


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump({"keys": [key_entry(p) for p in KEYS]}))
    return path


IRIS_INPUT = {"name": "input-0", "shape": [-1, 4], "dtype": "float32", "min": 0.0, "max": 10.0}


def base_config(tmp_path: Path, keys_file: Path, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "model": {
            "name": "iris",
            "protocol": "oip",
            "inputs": [IRIS_INPUT],
            "classes": ["setosa", "versicolor", "virginica"],
        },
        "store": {"kind": "sqlite", "path": str(tmp_path / "state.db")},
        "audit": {"path": str(tmp_path / "audit.jsonl")},
        "policies": [
            {"kind": "api_key", "keys_file": str(keys_file), "reload_interval_s": 0},
            {"kind": "quota", "per_principal": ["5/minute", "1000 total"]},
            {"kind": "input_validation", "max_bytes": 4096, "max_rows": 16},
            {
                "kind": "decision",
                "confidence_below": 0.6,
                "high_impact_labels": ["virginica"],
                "match": "all",
                "route": "review",
            },
            {
                "kind": "output_minimisation",
                "default": {"mode": "top_k", "k": 1, "decimals": 1},
                "scopes": {"scores": {"mode": "scores", "decimals": 2}},
            },
        ],
    }
    cfg.update(over)
    return cfg


@pytest.fixture
def write_config(tmp_path: Path, keys_file: Path) -> Callable[..., Path]:
    def write(**over: Any) -> Path:
        path = tmp_path / "guard.yaml"
        path.write_text(yaml.safe_dump(base_config(tmp_path, keys_file, **over), sort_keys=False))
        return path

    return write


@pytest.fixture
def redis_url() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server binary not on PATH (apt-get install redis-server)")
    with redis_server() as (url, _proc):
        yield url


@pytest.fixture
def seen() -> dict[str, str]:
    return {}


@pytest.fixture
def upstream(model: Any, seen: dict[str, str]) -> Iterator[str]:
    with ThreadServer(model_app(model, seen=seen)) as url:
        yield url


@pytest.fixture(params=["lean", "uvicorn"])
def front(request: pytest.FixtureRequest) -> str:
    """The HTTP server in front of the proxy: its own lean front end, or uvicorn (ASGI)."""
    return str(request.param)


@pytest.fixture
def proxy(write_config: Callable[..., Path], upstream: str, front: str) -> Callable[..., Any]:
    """Start a guard proxy in front of `upstream` (or another URL) with config overrides,
    served by each front end in turn."""
    servers: list[ThreadServer | ThreadFront] = []

    def start(target: str | None = None, **over: Any) -> tuple[str, Guard]:
        guard = Guard(load_config(write_config(**over)))
        app = GuardProxy(guard, target or upstream)
        server = ThreadFront(app) if front == "lean" else ThreadServer(app, lifespan="on")
        servers.append(server)
        return server.__enter__(), guard

    yield start
    for s in servers:
        s.__exit__(None, None, None)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each of the three built-in stores in turn (Redis: a real server, skipped if absent)."""
    if request.param == "memory":
        s: Store = MemoryStore()
    elif request.param == "sqlite":
        s = SQLiteStore(tmp_path / "s.db")
    else:
        from bastion.guard.stores.redis import RedisStore

        s = RedisStore(request.getfixturevalue("redis_url"))
    yield s
    s.close()
