"""What a probe gets to work with, and the fences around it.

A probe sees the endpoint only through a `ProbeSession`, which sends to the
endpoint's own origin and nowhere else, stops a probe at its request and time
bound, and remembers observations so the declared-vs-observed probe can compare
them with the manifest. Probes are plugins: anything with a `name`, a
`max_requests` bound and `run(session) -> Iterable[Finding]`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from bastion.errors import TargetError, UsageError
from bastion.findings import (
    Confidence,
    Finding,
    Location,
    References,
    Severity,
    Subject,
    SubjectKind,
)
from bastion.target.dialects import JsonDialect, JsonMapping, OipDialect
from bastion.target.http import Exchange, HttpClient, HttpOptions

__all__ = [
    "BoundReached",
    "DeclaredControls",
    "Endpoint",
    "Probe",
    "ProbeSession",
    "ProbeSettings",
]


@dataclass(frozen=True)
class DeclaredControls:
    """What the manifest (or the CLI) says the endpoint enforces; None = not declared."""

    auth: bool | None = None
    rate_limit: str | None = None
    output_minimisation: bool | None = None
    input_validation: bool | None = None


@dataclass(frozen=True)
class Endpoint:
    """One live endpoint to probe: for OIP `url` is the server base, for JSON the infer URL."""

    url: str
    protocol: Literal["oip", "json"] = "oip"
    model_name: str | None = None
    options: HttpOptions = field(default_factory=HttpOptions)
    mapping: JsonMapping = field(default_factory=JsonMapping)
    input_shape: tuple[int, ...] | None = None
    bounds: tuple[float, float] | None = None
    declared: DeclaredControls = field(default_factory=DeclaredControls)
    element_id: str | None = None
    location: Location | None = None

    def __post_init__(self) -> None:
        split = urlsplit(self.url)
        if split.scheme not in ("http", "https") or not split.hostname:
            raise UsageError(f"not an http(s) URL: {self.url!r}", hint="e.g. http://127.0.0.1:8080")
        if self.protocol == "oip" and not self.model_name:
            raise UsageError("probing an OIP endpoint needs the model name", hint="--model NAME")

    @property
    def origin(self) -> str:
        split = urlsplit(self.url)
        return f"{split.scheme}://{split.netloc}"

    def subject(self) -> Subject:
        return Subject(
            kind=SubjectKind.ENDPOINT,
            id=self.element_id or self.url,
            name=self.url,
            location=self.location,
        )


@dataclass(frozen=True)
class ProbeSettings:
    """Bounds on what probing may cost; defaults keep a full run to a few seconds."""

    burst: int = 40
    burst_seconds: float = 5.0
    attack_queries: int = 10_000
    repeats: int = 8
    oversized_bytes: int = 1_000_000
    request_timeout_s: float = 5.0
    probe_seconds: float = 30.0
    seed: int = 0


class BoundReached(Exception):
    """A probe hit its request or time bound; the runner records it and moves on."""


@runtime_checkable
class Probe(Protocol):
    name: str
    max_requests: int

    def run(self, session: ProbeSession) -> Iterable[Finding]: ...


class ProbeSession:
    """The fenced door to one endpoint, shared by the probes of one run."""

    def __init__(self, endpoint: Endpoint, settings: ProbeSettings | None = None) -> None:
        self.endpoint = endpoint
        self.settings = settings or ProbeSettings()
        self.client = HttpClient(endpoint.options)
        self.dialect: OipDialect | JsonDialect
        if endpoint.protocol == "oip":
            self.dialect = OipDialect(endpoint.url, endpoint.model_name or "")
        else:
            self.dialect = JsonDialect(endpoint.url, endpoint.mapping)
        self.observations: dict[str, dict[str, Any]] = {}
        self.rng = np.random.default_rng(self.settings.seed)
        self.sent: list[tuple[str, str]] = []
        self._probe = "setup"
        self._limit = 2
        self._used = 0
        self._deadline = float("inf")
        self._metadata_done = False

    def close(self) -> None:
        self.client.close()

    # -- fences ------------------------------------------------------------------
    def begin(self, probe: Probe) -> None:
        self._probe = probe.name
        self._limit = probe.max_requests
        self._used = 0
        self._deadline = time.monotonic() + self.settings.probe_seconds

    @property
    def used(self) -> int:
        return self._used

    def send(
        self,
        method: str,
        url: str,
        *,
        retry_on_429: bool = True,
        **kwargs: Any,
    ) -> Exchange:
        """Send within the bounds; one polite retry on 429 unless the probe wants it raw."""
        exchange = self._send_once(method, url, **kwargs)
        if retry_on_429 and exchange.status == 429:
            wait = exchange.retry_after if exchange.retry_after is not None else 1.0
            if wait <= 3.0 and self._used < self._limit:
                time.sleep(wait)
                exchange = self._send_once(method, url, **kwargs)
        return exchange

    def _send_once(self, method: str, url: str, **kwargs: Any) -> Exchange:
        if not url.startswith(self.endpoint.origin + "/") and url != self.endpoint.origin:
            raise UsageError(f"probe {self._probe} tried to leave {self.endpoint.origin}: {url}")
        if self._used >= self._limit:
            raise BoundReached(f"{self._probe}: request bound {self._limit} reached")
        if time.monotonic() > self._deadline:
            raise BoundReached(f"{self._probe}: time bound {self.settings.probe_seconds}s reached")
        kwargs.setdefault("timeout_s", self.settings.request_timeout_s)
        self._used += 1
        self.sent.append((method, url))
        return self.client.send(method, url, **kwargs)

    # -- helpers for probes ----------------------------------------------------------
    def prepare(self) -> None:
        """OIP: read the model metadata (authenticated) for input name, dtype and shape."""
        if self._metadata_done or not isinstance(self.dialect, OipDialect):
            return
        self._metadata_done = True
        try:
            exchange = self._send_once("GET", self.dialect.model_url)
        except (TargetError, BoundReached):
            return
        if exchange.status == 200:
            try:
                meta = exchange.json()
            except TargetError:
                return
            if isinstance(meta, dict):
                self.dialect.apply_metadata(meta)

    @property
    def input_shape(self) -> tuple[int, ...]:
        shape = self.endpoint.input_shape or self.dialect.input_shape
        if shape is None:
            raise UsageError(
                f"cannot tell the input shape of {self.endpoint.url}",
                hint="pass --input-shape (e.g. 4 or 28,28) or declare the model's input shape",
            )
        return shape

    @property
    def bounds(self) -> tuple[float, float]:
        return self.endpoint.bounds or (0.0, 1.0)

    def valid_inputs(self, n: int) -> npt.NDArray[np.float64]:
        lo, hi = self.bounds
        return self.rng.uniform(lo, hi, size=(n, *self.input_shape))

    def infer(
        self, inputs: npt.NDArray[Any], *, authenticate: bool = True, retry_on_429: bool = True
    ) -> Exchange:
        return self.send(
            "POST",
            self.dialect.infer_url,
            json_body=self.dialect.encode(inputs),
            authenticate=authenticate,
            retry_on_429=retry_on_429,
        )

    def observe(self, probe: str, **values: Any) -> None:
        self.observations.setdefault(probe, {}).update(values)

    def finding(
        self,
        rule_id: str,
        title: str,
        message: str,
        severity: Severity,
        evidence: dict[str, Any],
        *,
        atlas: tuple[str, ...] = (),
        owasp: tuple[str, ...] = (),
        cwe: tuple[str, ...] = (),
        mitigations: tuple[str, ...] = (),
        confidence: Confidence = Confidence.HIGH,
        key: str = "",
    ) -> Finding:
        return Finding(
            rule_id=rule_id,
            title=title,
            message=message,
            severity=severity,
            confidence=confidence,
            analyser="probe",
            subject=self.endpoint.subject(),
            evidence={"probe": self._probe, "requests": self._used, **evidence},
            references=References(atlas=atlas, owasp=owasp, cwe=cwe),
            mitigations=mitigations,
            key=key,
        )
