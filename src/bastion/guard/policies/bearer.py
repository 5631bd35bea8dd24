"""JWT bearer-token authentication, for deployments whose callers already hold tokens.

Many model APIs sit behind an identity provider that issues signed JWTs; the
guard then verifies the token instead of keeping its own key file. The
policy is strict where JWT libraries are often used loosely: the accepted
algorithms are listed in the config (never taken from the token, never
`none`), HMAC and public-key algorithms cannot be mixed (the classic
algorithm-confusion attack), `exp` is required, issuer and audience are
checked when configured. The principal is a claim (`sub` by default), so
quotas and detection follow the person, not the token. Revocation works like
the API-key file: token ids (`jti`) listed in `revoked_file` are refused from
the next request on, without a restart. Needs the `jwt` extra (PyJWT).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from bastion.errors import ConfigError
from bastion.guard.policy import GuardEnv, PolicyBase, PolicyOptions
from bastion.guard.request import Allow, Deny, Principal, Request, Verdict

__all__ = ["JwtAuth"]

_HMAC = frozenset({"HS256", "HS384", "HS512"})
_PUBLIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_CHALLENGE = 'Bearer realm="bastion-guard", error="invalid_token"'


class JwtAuth(PolicyBase):
    name = "jwt"

    class Options(PolicyOptions):
        algorithms: list[str] = Field(min_length=1)
        key_file: str | None = Field(
            default=None, description="PEM public key (RS*, PS*, ES*, EdDSA)"
        )
        secret_env: str | None = Field(
            default=None, description="environment variable holding the HS* secret"
        )
        issuer: str | None = None
        audience: str | None = None
        principal_claim: str = "sub"
        scope_claim: str = "scope"
        required_scope: str = "predict"
        leeway_s: float = Field(default=30.0, ge=0, le=600)
        revoked_file: str | None = None
        reload_interval_s: float = Field(default=1.0, ge=0)

        @model_validator(mode="after")
        def _one_key_kind(self) -> JwtAuth.Options:
            algs = set(self.algorithms)
            unknown = algs - _HMAC - _PUBLIC
            if unknown:
                raise ValueError(
                    f"unsupported algorithm(s) {sorted(unknown)}; use some of "
                    f"{sorted(_HMAC | _PUBLIC)} ('none' is never accepted)"
                )
            if algs & _HMAC and algs & _PUBLIC:
                raise ValueError("do not mix HMAC (HS*) and public-key algorithms in one policy")
            if algs & _HMAC and (self.secret_env is None or self.key_file is not None):
                raise ValueError("HS* algorithms need secret_env (and no key_file)")
            if algs & _PUBLIC and (self.key_file is None or self.secret_env is not None):
                raise ValueError("public-key algorithms need key_file (and no secret_env)")
            return self

    def __init__(self, options: Options, env: GuardEnv) -> None:
        try:
            import jwt
        except ImportError:
            raise ConfigError(
                "the jwt policy needs PyJWT", hint="pip install 'bastion-ml[jwt]'"
            ) from None
        self._jwt = jwt
        self.options = options
        self.key: Any
        if options.secret_env is not None:
            secret = os.environ.get(options.secret_env, "")
            if len(secret) < 32:
                raise ConfigError(
                    f"environment variable {options.secret_env} must hold the HMAC secret "
                    "(at least 32 characters)",
                    hint="export it before starting the guard",
                )
            self.key = secret.encode()
        else:
            assert options.key_file is not None
            path = env.config.resolve(options.key_file)
            try:
                pem = path.read_bytes()
                from cryptography.hazmat.primitives.serialization import load_pem_public_key

                self.key = load_pem_public_key(pem)
            except OSError as exc:
                raise ConfigError(f"cannot read JWT key: {exc.strerror}", path=str(path)) from None
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    f"not a PEM public key: {exc}",
                    path=str(path),
                    hint="give the identity provider's public key, not a certificate or secret",
                ) from None
        self.revoked_path = (
            env.config.resolve(options.revoked_file) if options.revoked_file else None
        )
        if self.revoked_path is not None and not self.revoked_path.is_file():
            raise ConfigError(
                "the revoked-token file does not exist",
                path=str(self.revoked_path),
                hint="create it empty; list one revoked token id (jti) per line",
            )
        self._revoked: frozenset[str] = frozenset()
        self._mtime = -1
        self._checked = -1e9
        self._maybe_reload()

    def _maybe_reload(self) -> None:
        if self.revoked_path is None:
            return
        now = time.monotonic()
        if now - self._checked < self.options.reload_interval_s:
            return
        self._checked = now
        try:
            mtime = os.stat(self.revoked_path).st_mtime_ns
        except OSError:
            mtime = -1
        if mtime == self._mtime:
            return
        revoked = _read_revoked(self.revoked_path)
        if revoked is not None:  # unreadable mid-rewrite: keep what was revoked so far
            self._mtime = mtime
            self._revoked = revoked

    def on_request(self, request: Request) -> Verdict:
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() != "bearer ":
            if request.principal is not None:
                return Allow()  # authenticated by trusted in-process code (the `wrap` adapter)
            return Deny(
                401,
                "unauthenticated",
                "a bearer token is required (Authorization: Bearer <JWT>)",
                headers={"WWW-Authenticate": 'Bearer realm="bastion-guard"'},
            )
        self._maybe_reload()
        opts = self.options
        jwt = self._jwt
        try:
            claims = jwt.decode(
                auth[7:].strip(),
                self.key,
                algorithms=opts.algorithms,
                audience=opts.audience,
                issuer=opts.issuer,
                leeway=opts.leeway_s,
                options={"require": ["exp", opts.principal_claim]},
            )
        except jwt.ExpiredSignatureError:
            return self._deny("expired_token", "the token has expired")
        except jwt.InvalidTokenError as exc:
            return self._deny("invalid_token", f"the token is not valid: {exc}")
        jti = claims.get("jti")
        if isinstance(jti, str) and jti in self._revoked:
            return self._deny("revoked_token", "the token has been revoked")
        who = claims.get(opts.principal_claim)
        if not isinstance(who, str) or not who:
            return self._deny("invalid_token", f"claim {opts.principal_claim!r} is not a string")
        scopes = _scopes(claims.get(opts.scope_claim))
        request.principal = Principal(who, frozenset(scopes))
        if opts.required_scope not in scopes:
            return Deny(403, "missing_scope", f"the token lacks the {opts.required_scope!r} scope")
        return Allow()

    @staticmethod
    def _deny(reason: str, message: str) -> Deny:
        return Deny(401, reason, message, headers={"WWW-Authenticate": _CHALLENGE})


def _scopes(value: Any) -> list[str]:
    """OAuth's space-separated `scope` string, or a JSON list (`scp`, `roles`)."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _read_revoked(path: Path) -> frozenset[str] | None:
    """One token id per line; '#' starts a comment. None when the file cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    return frozenset(
        line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()
    )
