"""JWT bearer authentication through the real proxy: who may predict, and who is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bastion.errors import ConfigError
from bastion.guard import Guard, load_config
from bastion.guard.adapters.wrap import wrap
from bastion.guard.request import Request
from tests.guard.test_proxy import INFER, oip

pytestmark = pytest.mark.network

X = [[5.1, 3.5, 1.4, 0.2]]
ISSUER, AUDIENCE = "https://id.example.test", "iris-api"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwt_policy(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "idp.pem").write_bytes(pem)
    (tmp_path / "revoked.txt").write_text("# revoked token ids\n")
    return {
        "kind": "jwt",
        "algorithms": ["RS256"],
        "key_file": str(tmp_path / "idp.pem"),
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "revoked_file": str(tmp_path / "revoked.txt"),
        "reload_interval_s": 0,
    }


def mint(key: Any, sub: str = "alice", alg: str = "RS256", **claims: Any) -> str:
    body = {
        "sub": sub,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": int(time.time()) + 300,
        "scope": "predict",
        "jti": f"{sub}-1",
    }
    body.update(claims)
    return jwt.encode(body, key, algorithm=alg)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def lower(headers: dict[str, str]) -> dict[str, str]:
    """In-process requests carry header names in lower case, as ASGI servers give them."""
    return {k.lower(): v for k, v in headers.items()}


def _policies(jwt_policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [jwt_policy, {"kind": "quota", "per_principal": ["3/minute"]}]


def test_valid_tokens_pass_and_the_subject_is_the_principal(
    proxy: Callable[..., Any], jwt_policy: dict[str, Any], rsa_key: Any
) -> None:
    base, _ = proxy(policies=_policies(jwt_policy))
    with httpx.Client(base_url=base) as c:
        for _ in range(3):
            assert c.post(INFER, json=oip(X), headers=bearer(mint(rsa_key))).status_code == 200
        # the quota follows the subject across freshly minted tokens, not the token string
        again = c.post(INFER, json=oip(X), headers=bearer(mint(rsa_key, jti="alice-2")))
        assert again.status_code == 429
        assert c.post(INFER, json=oip(X), headers=bearer(mint(rsa_key, "bob"))).status_code == 200


def _forged(rsa_key: Any, tmp_path: Path) -> dict[str, str]:
    """Tokens that must all be refused, each for one reason."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (tmp_path / "idp.pem").read_bytes()
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=")
    claims = {"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    # algorithm confusion: HS256 "signed" with the RSA public key as the HMAC secret
    hs_header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    hs_header = hs_header.rstrip(b"=")
    hs_sig = hmac.new(pem, hs_header + b"." + payload, hashlib.sha256).digest()
    return {
        "unsigned (alg none)": (header + b"." + payload + b".").decode(),
        "HS256 with the public key": (
            hs_header + b"." + payload + b"." + base64.urlsafe_b64encode(hs_sig).rstrip(b"=")
        ).decode(),
        "another issuer's key": mint(other),
        "expired": mint(rsa_key, exp=int(time.time()) - 3600),
        "wrong audience": mint(rsa_key, aud="another-api"),
        "wrong issuer": mint(rsa_key, iss="https://evil.example.test"),
        "no expiry": jwt.encode({"sub": "x", "iss": ISSUER, "aud": AUDIENCE}, rsa_key, "RS256"),
        "garbage": "not.a.jwt",
    }


def test_forged_expired_and_misdirected_tokens_are_401(
    proxy: Callable[..., Any], jwt_policy: dict[str, Any], rsa_key: Any, tmp_path: Path
) -> None:
    base, _ = proxy(policies=_policies(jwt_policy))
    with httpx.Client(base_url=base) as c:
        r = c.post(INFER, json=oip(X))
        assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
        for why, token in _forged(rsa_key, tmp_path).items():
            r = c.post(INFER, json=oip(X), headers=bearer(token))
            assert r.status_code == 401, why
            assert r.json()["error"] in ("invalid_token", "expired_token"), why
            assert "invalid_token" in r.headers["www-authenticate"], why
        expired = c.post(
            INFER, json=oip(X), headers=bearer(mint(rsa_key, exp=int(time.time()) - 3600))
        )
        assert expired.json()["error"] == "expired_token"


def test_missing_scope_is_403_and_revocation_needs_no_restart(
    proxy: Callable[..., Any], jwt_policy: dict[str, Any], rsa_key: Any, tmp_path: Path
) -> None:
    base, _ = proxy(policies=_policies(jwt_policy))
    with httpx.Client(base_url=base) as c:
        r = c.post(INFER, json=oip(X), headers=bearer(mint(rsa_key, scope="review")))
        assert r.status_code == 403 and r.json()["error"] == "missing_scope"
        token = mint(rsa_key, "carol", jti="carol-7")
        assert c.post(INFER, json=oip(X), headers=bearer(token)).status_code == 200
        revoked = tmp_path / "revoked.txt"
        revoked.write_text("carol-7  # leaked in a log\n")
        st = revoked.stat()
        os.utime(revoked, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        r = c.post(INFER, json=oip(X), headers=bearer(token))
        assert r.status_code == 401 and r.json()["error"] == "revoked_token"
        # deleting the list does not un-revoke what it held
        revoked.unlink()
        assert c.post(INFER, json=oip(X), headers=bearer(token)).status_code == 401


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"algorithms": ["none"]}, "unsupported algorithm"),
        ({"algorithms": ["RS256", "HS256"]}, "do not mix"),
        ({"algorithms": ["HS256"]}, "secret_env"),
        ({"key_file": "missing.pem"}, "cannot read JWT key"),
        ({"revoked_file": "missing.txt"}, "revoked-token file does not exist"),
    ],
)
def test_unsafe_or_broken_configs_are_refused(
    write_config: Callable[..., Path],
    jwt_policy: dict[str, Any],
    tmp_path: Path,
    change: dict[str, Any],
    message: str,
) -> None:
    policy = {**jwt_policy, **change}
    path = write_config(policies=[policy])
    with pytest.raises(ConfigError) as err:
        Guard(load_config(path))
    assert message in str(err.value)


def test_hmac_secret_comes_from_the_environment(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, model: Any
) -> None:
    policy = {"kind": "jwt", "algorithms": ["HS256"], "secret_env": "BASTION_TEST_JWT"}
    path = write_config(policies=[policy])
    monkeypatch.setenv("BASTION_TEST_JWT", "short")
    with pytest.raises(ConfigError, match="at least 32 characters"):
        Guard(load_config(path))
    secret = "s" * 40
    monkeypatch.setenv("BASTION_TEST_JWT", secret)
    guard = Guard(load_config(path))
    g = wrap(guard, model.predict_proba)
    x = np.asarray(X, dtype=np.float32)
    try:
        good = jwt.encode({"sub": "dave", "exp": int(time.time()) + 60, "scope": "predict"}, secret)
        out = guard.handle(Request({"input-0": x}, headers=lower(bearer(good))), g._model)
        assert out.status == 200 and out.prediction is not None
        forged = jwt.encode({"sub": "dave", "exp": int(time.time()) + 60}, "t" * 40)
        out = guard.handle(Request({"input-0": x}, headers=lower(bearer(forged))), g._model)
        assert out.status == 401 and out.deny is not None and out.deny.reason == "invalid_token"
    finally:
        guard.close()
