"""API-key authentication: who is calling, and may they predict?

Keys look like `<id>.<secret>`. The key file stores, per id, only the
SHA-256 of the secret, the principal and its scopes; the id finds the entry
and the digests are compared in constant time. The file is re-read when its
modification time changes, so revoking a key (`revoked: true` or deleting
it) takes effect without restarting the guard.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bastion.errors import ConfigError
from bastion.guard.config import ConfigSource, config_error
from bastion.guard.policy import GuardEnv, PolicyBase, PolicyOptions
from bastion.guard.request import Allow, Deny, Principal, Request, Verdict

__all__ = ["ApiKeyAuth", "KeyEntry", "KeyFile", "new_key"]


class KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{4,64}$")
    principal: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: list[str] = Field(default_factory=lambda: ["predict"])
    revoked: bool = False


class KeyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: list[KeyEntry] = Field(default_factory=list)


def new_key(principal: str, scopes: list[str]) -> tuple[str, dict[str, Any]]:
    """A fresh key: the token to hand to the caller, and the entry for the key file."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    entry = {
        "id": key_id,
        "principal": principal,
        "sha256": hashlib.sha256(secret.encode()).hexdigest(),
        "scopes": scopes,
    }
    return f"{key_id}.{secret}", entry


def _load_keys(path: Path) -> dict[str, KeyEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read key file: {exc.strerror}", path=str(path)) from None
    try:
        data = yaml.safe_load(text) or {}
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"key file is not valid YAML: {exc}", path=str(path)) from None
    try:
        parsed = KeyFile.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, ConfigSource(path, node)) from None
    return {k.id: k for k in parsed.keys}


class ApiKeyAuth(PolicyBase):
    name = "api_key"

    class Options(PolicyOptions):
        keys_file: str
        required_scope: str = "predict"
        reload_interval_s: float = Field(default=1.0, ge=0)

    def __init__(self, options: Options, env: GuardEnv) -> None:
        self.options = options
        self.path = env.config.resolve(options.keys_file)
        self._keys = _load_keys(self.path)
        self._principals: dict[str, Principal] = {}  # per key id; emptied when keys reload
        self._mtime = self._stat()
        self._checked = time.monotonic()

    def _stat(self) -> int:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return -1

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.options.reload_interval_s:
            return
        self._checked = now
        mtime = self._stat()
        if mtime == self._mtime:
            return
        try:
            self._keys = _load_keys(self.path)
        except ConfigError:
            # A half-written or broken key file must not let anyone in: keep no keys.
            self._keys = {}
        self._principals = {}
        self._mtime = mtime

    @staticmethod
    def _token(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return request.headers.get("x-api-key") or None

    def on_request(self, request: Request) -> Verdict:
        self._maybe_reload()
        token = self._token(request)
        if token is None and request.principal is not None:
            return Allow()  # authenticated by trusted in-process code (the `wrap` adapter)
        challenge = {"WWW-Authenticate": 'Bearer realm="bastion-guard"'}
        if not token:
            return Deny(
                401,
                "unauthenticated",
                "an API key is required (Authorization: Bearer <key> or X-API-Key)",
                headers=challenge,
            )
        key_id, _, secret = token.partition(".")
        entry = self._keys.get(key_id)
        presented = hashlib.sha256(secret.encode()).hexdigest()
        stored = entry.sha256 if entry else "0" * 64
        if not (hmac.compare_digest(presented, stored) and entry and secret):
            return Deny(401, "invalid_key", "the API key is not valid", headers=challenge)
        if entry.revoked:
            return Deny(401, "revoked_key", "the API key has been revoked", headers=challenge)
        # authenticated from here on (the audit record names who was refused a scope)
        principal = self._principals.get(entry.id)
        if principal is None:  # immutable, so one per key serves every request
            principal = self._principals[entry.id] = Principal(
                entry.principal, frozenset(entry.scopes)
            )
        request.principal = principal
        if self.options.required_scope not in entry.scopes:
            return Deny(
                403, "missing_scope", f"the API key lacks the {self.options.required_scope!r} scope"
            )
        return Allow()
