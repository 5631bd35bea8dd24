"""With OpenTelemetry installed, every decided request is one span in the caller's trace."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from bastion.guard import Guard, load_config
from bastion.guard.adapters.wrap import GuardDenied, wrap
from bastion.guard.request import Principal

sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk not installed")


@pytest.fixture(scope="module")
def exporter() -> Iterator[object]:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exp = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exp))
    trace.set_tracer_provider(provider)
    yield exp


def test_each_decision_is_a_span_continuing_the_callers_trace(
    exporter, write_config, model
) -> None:
    from bastion.guard.request import Request

    exporter.clear()  # type: ignore[attr-defined]
    guard = Guard(load_config(write_config()))
    try:
        g = wrap(guard, model.predict_proba)
        x = np.array([[5.1, 3.5, 1.4, 0.2]], np.float32)
        with pytest.raises(GuardDenied):
            g(x)
        g(x, principal=Principal("svc", frozenset({"predict"})))
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        guard.handle(
            Request(
                {"input-0": x},
                headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
                principal=Principal("svc", frozenset({"predict"})),
            ),
            lambda r: g._model(r),
        )
    finally:
        guard.close()
    spans = exporter.get_finished_spans()  # type: ignore[attr-defined]
    assert [s.attributes["bastion.guard.decision"] for s in spans] == ["deny", "allow", "allow"]
    assert spans[0].attributes["http.response.status_code"] == 401
    assert format(spans[2].context.trace_id, "032x") == trace_id
    assert spans[2].end_time >= spans[2].start_time
