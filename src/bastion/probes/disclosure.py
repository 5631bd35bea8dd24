"""What the endpoint says about itself: in its errors, and on its metadata routes.

Stack traces, library versions, file paths and internal host names turn an
opaque model into a known stack with known CVEs and a known layout; the
metadata routes are asked without credentials, as a stranger would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bastion.errors import EndpointTimeout
from bastion.findings import Finding, Severity
from bastion.probes.base import ProbeSession
from bastion.probes.leaks import Leak, find_leaks
from bastion.target.dialects import OipDialect

__all__ = ["ErrorLeakageProbe", "MetadataProbe"]

_OIP_MODEL_KEYS = {"name", "versions", "platform", "inputs", "outputs"}
_OIP_SERVER_KEYS = {"name", "version", "extensions"}
_JSON_PATHS = ("/", "/health", "/metadata", "/version", "/info")


class ErrorLeakageProbe:
    name = "errors"
    max_requests = 5
    order = 40

    def run(self, session: ProbeSession) -> Iterator[Finding]:
        session.prepare()
        dialect = session.dialect
        origin = session.endpoint.origin
        json_header = {"Content-Type": "application/json"}
        missing = (
            f"{origin}/v2/models/bastion-probe-missing/infer"
            if isinstance(dialect, OipDialect)
            else f"{origin}/bastion-probe-missing"
        )
        x = session.valid_inputs(1)
        x.reshape(-1)[0] = float("nan")
        requests: list[tuple[str, str, str, dict[str, Any]]] = [
            (
                "truncated_json",
                "POST",
                dialect.infer_url,
                {"content": b'{"inputs": [', "headers": json_header},
            ),
            ("nan_input", "POST", dialect.infer_url, {"json_body": dialect.encode(x)}),
            (
                "unknown_route",
                "POST",
                missing,
                {"json_body": dialect.encode(session.valid_inputs(1))},
            ),
            ("wrong_method", "GET", dialect.infer_url, {}),
        ]
        leaks: list[Leak] = []
        statuses: dict[str, int | None] = {}
        for case, method, url, kwargs in requests:
            try:
                exchange = session.send(method, url, **kwargs)
            except EndpointTimeout:
                statuses[case] = None
                continue
            statuses[case] = exchange.status
            if exchange.status >= 400:
                leaks += find_leaks(exchange)
        kinds = sorted({leak.kind for leak in leaks})
        session.observe(self.name, leak_kinds=kinds, statuses=statuses)
        if leaks:
            severity = Severity.MEDIUM if "stack_trace" in kinds else Severity.LOW
            yield session.finding(
                "P109",
                "Error answers leak internals",
                f"Error responses reveal {', '.join(kinds)}: an attacker learns the stack, its "
                "versions and its layout from a few bad requests.",
                severity,
                {
                    "leak_kinds": kinds,
                    "leaks": [leak.as_evidence() for leak in leaks[:20]],
                    "statuses": statuses,
                    "sample_size": len(statuses),
                },
                atlas=("AML.T0014", "AML.T0007"),
                cwe=("CWE-209", "CWE-497"),
                mitigations=("error-hygiene",),
            )


class MetadataProbe:
    name = "metadata"
    max_requests = 6
    order = 50

    def run(self, session: ProbeSession) -> Iterator[Finding]:
        dialect = session.dialect
        origin = session.endpoint.origin
        if isinstance(dialect, OipDialect):
            urls = [
                f"{origin}/v2",
                dialect.model_url,
                f"{origin}/v2/health/ready",
                f"{dialect.model_url}/ready",
            ]
        else:
            urls = [origin + p for p in _JSON_PATHS]
        answered: dict[str, Any] = {}
        leaks: list[Leak] = []
        nonstandard: dict[str, list[str]] = {}
        for url in urls:
            try:
                exchange = session.send("GET", url, authenticate=False)
            except EndpointTimeout:
                continue
            if exchange.status != 200:
                continue
            try:
                body = exchange.json()
            except Exception:
                body = None
            answered[url] = sorted(body) if isinstance(body, dict) else type(body).__name__
            leaks += find_leaks(exchange)
            if isinstance(body, dict) and isinstance(dialect, OipDialect):
                standard = _OIP_SERVER_KEYS if url == f"{origin}/v2" else _OIP_MODEL_KEYS
                if url in (f"{origin}/v2", dialect.model_url):
                    odd = sorted(k for k in body if k not in standard)
                    if odd:
                        nonstandard[url] = odd
        schema = dialect.model_url in answered if isinstance(dialect, OipDialect) else False
        kinds = sorted({leak.kind for leak in leaks})
        session.observe(self.name, answered=sorted(answered), leak_kinds=kinds, schema=schema)
        if leaks or nonstandard:
            what = kinds + (["non-standard fields"] if nonstandard else [])
            yield session.finding(
                "P110",
                "Metadata routes leak internals without authentication",
                f"Unauthenticated GETs on {len(answered)} routes revealed {', '.join(what)}: "
                "versions, artifact paths and hosts tell an attacker which exploits and which "
                "model family to try.",
                Severity.MEDIUM,
                {
                    "answered_without_auth": answered,
                    "leak_kinds": kinds,
                    "leaks": [leak.as_evidence() for leak in leaks[:20]],
                    "nonstandard_fields": nonstandard,
                    "schema_exposed": schema,
                    "sample_size": len(urls),
                },
                atlas=("AML.T0014", "AML.T0013", "AML.T0007"),
                cwe=("CWE-200", "CWE-497"),
                mitigations=("metadata-minimisation", "authentication"),
            )
