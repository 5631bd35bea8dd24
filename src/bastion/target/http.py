"""One HTTP client for targets and probes: pooling, TLS, credentials, one-line errors.

Transport failures (refused connection, TLS, timeout) become `TargetError`s that
say which URL failed and what to try; a status code is data here (probes need
to see 401s and 500s), and becomes an `EndpointError` only when a target asks
for a successful answer.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from bastion.errors import EndpointError, EndpointTimeout, TargetError, UsageError

__all__ = ["Exchange", "HttpClient", "HttpOptions", "parse_retry_after"]


@dataclass(frozen=True)
class HttpOptions:
    """How to reach an endpoint; every field maps to a CLI flag and a manifest field."""

    headers: tuple[tuple[str, str], ...] = ()
    api_key: str | None = None
    api_key_header: str = "Authorization"
    timeout_s: float = 10.0
    verify: bool = True
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    max_connections: int = 8

    def auth_headers(self) -> dict[str, str]:
        if not self.api_key:
            return {}
        if self.api_key_header.lower() == "authorization":
            return {"Authorization": f"Bearer {self.api_key}"}
        return {self.api_key_header: self.api_key}


@dataclass(frozen=True)
class Exchange:
    """One request and its answer, as measured on the wire."""

    method: str
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    latency_s: float
    bytes_sent: int

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))

    def json(self, **kwargs: Any) -> Any:
        try:
            return json.loads(self.body, **kwargs)
        except (ValueError, UnicodeDecodeError):
            ctype = self.headers.get("content-type", "no content-type")
            excerpt = self.text[:80].replace("\n", " ")
            raise TargetError(
                f"{self.url} answered HTTP {self.status} with non-JSON ({ctype}): {excerpt!r}",
                hint="check the URL and --protocol; is this really the model endpoint?",
            ) from None

    def raise_for_status(self) -> None:
        # 202: accepted but not answered (a guard holding the request for human review);
        # there is no prediction in it, and reading one out of it would be a guess
        if self.status < 400 and self.status != 202:
            return
        excerpt = self.text[:200].replace("\n", " ")
        hint = None
        if self.status == 202:
            hint = "the request was accepted without an answer (held for review?)"
        elif self.status in (401, 403):
            hint = "pass an API key with --api-key (or the manifest's endpoint auth)"
        elif self.status == 404:
            hint = "check the URL and the model name"
        raise EndpointError(
            f"{self.method} {self.url} answered HTTP {self.status}: {excerpt}",
            status=self.status,
            retry_after=self.retry_after,
            body=self.text[:2000],
            hint=hint,
        )


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _ssl_context(options: HttpOptions) -> ssl.SSLContext | bool:
    if not options.verify:
        return False
    try:
        ctx = ssl.create_default_context(cafile=options.ca_cert)
        if options.client_cert:
            ctx.load_cert_chain(options.client_cert, options.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            f"cannot load TLS certificate files: {exc}", hint="check --ca-cert/--client-cert paths"
        ) from exc
    return ctx


class HttpClient:
    """A pooled httpx client that never leaks an httpx exception to the caller."""

    def __init__(self, options: HttpOptions | None = None) -> None:
        self.options = options or HttpOptions()
        limits = httpx.Limits(
            max_connections=self.options.max_connections,
            max_keepalive_connections=self.options.max_connections,
        )
        self._client = httpx.Client(
            verify=_ssl_context(self.options),
            timeout=httpx.Timeout(self.options.timeout_s),
            limits=limits,
            headers=dict(self.options.headers),
            follow_redirects=False,
        )
        self.requests_sent = 0

    def close(self) -> None:
        self._client.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        authenticate: bool = True,
        timeout_s: float | None = None,
    ) -> Exchange:
        """Send one request; raises only for transport failures, never for a status."""
        merged = self.options.auth_headers() if authenticate else {}
        if json_body is not None:
            content = json.dumps(json_body, allow_nan=True).encode()
            merged["Content-Type"] = "application/json"
        merged.update(headers or {})
        timeout = httpx.USE_CLIENT_DEFAULT if timeout_s is None else httpx.Timeout(timeout_s)
        request = self._client.build_request(
            method, url, content=content, headers=merged, timeout=timeout
        )
        if not authenticate:
            # Credentials may also have come in as plain --header values.
            explicit = {k.lower() for k in headers or {}}
            for name in list(request.headers):
                if name.lower() not in explicit and _is_credential(
                    name, self.options.api_key_header
                ):
                    del request.headers[name]
        sent = len(content or b"")
        self.requests_sent += 1
        t0 = time.perf_counter()
        try:
            response = self._client.send(request)
            body = response.read()
        except httpx.TimeoutException as exc:
            raise EndpointTimeout(
                f"{method} {url}: no answer within {timeout_s or self.options.timeout_s:g}s "
                f"({type(exc).__name__})",
                hint="is the endpoint overloaded? raise --timeout",
            ) from None
        except httpx.TransportError as exc:
            raise _transport_error(method, url, exc) from None
        return Exchange(
            method=method,
            url=url,
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=body,
            latency_s=time.perf_counter() - t0,
            bytes_sent=sent,
        )


_CREDENTIAL_WORDS = ("auth", "key", "token", "cookie", "secret", "session")


def _is_credential(name: str, api_key_header: str) -> bool:
    lowered = name.lower()
    return lowered == api_key_header.lower() or any(w in lowered for w in _CREDENTIAL_WORDS)


def _transport_error(method: str, url: str, exc: httpx.TransportError) -> TargetError:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE" in text.upper() or "SSL" in text.upper() or "TLS" in text.upper():
        return TargetError(
            f"TLS handshake with {url} failed: {text}",
            hint="pass the server's CA with --ca-cert, or --insecure for a test server",
        )
    if isinstance(exc, httpx.ConnectError):
        return TargetError(
            f"cannot connect to {url}: {text}", hint="is the server running? check --url"
        )
    return TargetError(f"{method} {url} failed: {text}", hint="check the URL and the network")
