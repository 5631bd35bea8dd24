"""TLS options against a real HTTPS server with a certificate made at test time."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bastion.errors import TargetError, UsageError
from bastion.target import HttpOptions, json_target
from bastion.target.http import HttpClient
from bastion.testing import ServerConfig, model_app, serve_in_background


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bastion test server")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_verification_ca_and_insecure(model: Any, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    app = model_app(model, ServerConfig.vulnerable("json"))
    x = np.array([[5.1, 3.5, 1.4, 0.2]])
    with serve_in_background(app, ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
        assert url.startswith("https://")
        strict = json_target(url + "/predict")
        with pytest.raises(TargetError, match=r"TLS handshake.*--ca-cert"):
            strict.query(x)
        strict.close()
        for options in (HttpOptions(ca_cert=str(cert)), HttpOptions(verify=False)):
            target = json_target(url + "/predict", options=options)
            assert target.query(x).labels.tolist() == [0]
            target.close()


def test_missing_ca_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="TLS certificate"):
        HttpClient(HttpOptions(ca_cert=str(tmp_path / "nope.pem")))


def test_unauthenticated_requests_drop_every_credential_header() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(sorted(request.headers.keys()))

    app = Starlette(routes=[Route("/echo", echo)])
    options = HttpOptions(
        api_key="k1",
        headers=(("X-Api-Token", "t"), ("Cookie", "s=1"), ("X-Trace", "keep")),
    )
    with serve_in_background(app) as url:
        client = HttpClient(options)
        anonymous = set(client.send("GET", url + "/echo", authenticate=False).json())
        authed = set(client.send("GET", url + "/echo").json())
        wrong = client.send(
            "GET", url + "/echo", authenticate=False, headers={"X-API-Key": "bogus"}
        ).json()
        client.close()
    assert {"authorization", "x-api-token", "cookie", "x-trace"} <= authed
    assert "x-trace" in anonymous
    assert not anonymous & {"authorization", "x-api-token", "cookie"}
    assert "x-api-key" in wrong and "authorization" not in wrong
