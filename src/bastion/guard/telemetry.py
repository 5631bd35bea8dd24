"""OpenTelemetry spans for guarded requests, when the OpenTelemetry API is installed.

One span per decided request, recorded when the decision is made (so the
sans-IO core needs no context manager across the model call), carrying the
decision, status, reasons, rows and model, and continuing the caller's trace
when the request has a `traceparent` header. Without the API this is a no-op;
with the API but no SDK, spans are non-recording and nearly free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["record_span"]

try:
    from opentelemetry import propagate, trace

    _tracer: Any = trace.get_tracer("bastion.guard")
except ImportError:  # pragma: no cover - depends on the environment
    _tracer = None


def record_span(
    *,
    start_ns: int,
    end_ns: int,
    headers: Mapping[str, str],
    decision: str,
    status: int,
    reasons: Sequence[str],
    rows: int,
    model: str,
) -> None:
    if _tracer is None:
        return
    context = propagate.extract(headers) if "traceparent" in headers else None
    span = _tracer.start_span(
        "bastion.guard.request",
        context=context,
        start_time=start_ns,
        attributes={
            "bastion.guard.decision": decision,
            "http.response.status_code": status,
            "bastion.guard.reasons": list(reasons),
            "bastion.guard.rows": rows,
            "bastion.guard.model": model,
        },
    )
    span.end(end_time=end_ns)
