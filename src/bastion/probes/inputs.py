"""The input-handling battery: malformed inputs that a careful endpoint answers with a 4xx.

An answer of 200 to nonsense means the model is fed inputs nobody specified; a
5xx or a hang means the stack around the model breaks on them. Both are
findings; a 4xx with an error message is the expected outcome.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from bastion.errors import EndpointTimeout
from bastion.findings import Finding, Severity
from bastion.probes.base import ProbeSession
from bastion.target.dialects import OipDialect

__all__ = ["InputHandlingProbe", "malformed_requests"]

Request = dict[str, Any]  # keyword arguments for ProbeSession.send
_JSON = {"Content-Type": "application/json"}


def _json(body: Any) -> Request:
    return {"content": json.dumps(body, allow_nan=True).encode(), "headers": dict(_JSON)}


def _with_data(session: ProbeSession, data: Any, shape: list[int]) -> Request:
    """A request body of the right structure around arbitrary (bad) data."""
    dialect = session.dialect
    if isinstance(dialect, OipDialect):
        body = dialect.encode(np.zeros((1, *session.input_shape)))
        body["inputs"][0]["data"] = data
        body["inputs"][0]["shape"] = shape
        return _json(body)
    rows = np.asarray(data, dtype=object).reshape(shape).tolist() if shape[0] else []
    body = dict(dialect.mapping.template)
    node = body
    *parents, leaf = dialect.mapping.input_field.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = rows
    return _json(body)


def malformed_requests(session: ProbeSession) -> dict[str, Callable[[], Request]]:
    """Named builders, each one malformed request; built lazily so a bound stops early."""
    shape = session.input_shape
    width = int(np.prod(shape))
    lo, hi = session.bounds
    far = hi + 1e6 * max(1.0, abs(hi - lo))

    def values(fill: float, count: int = width) -> Request:
        data = [float(v) for v in session.valid_inputs(1).reshape(-1)][:count]
        data[0] = fill
        return _with_data(session, data, [1, *shape])

    def oversized() -> Request:
        row = session.valid_inputs(1)
        one = len(json.dumps(row.tolist()))
        n = max(2, session.settings.oversized_bytes // max(one, 1))
        body = session.dialect.encode(np.repeat(row, n, axis=0))
        return _json(body)

    def nested() -> Request:
        depth = 5000
        raw = b"[" * depth + b"1" + b"]" * depth
        inner = (
            b'{"inputs": '
            if not isinstance(session.dialect, OipDialect)
            else (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": ')
        )
        tail = b"}" if not isinstance(session.dialect, OipDialect) else b"}]}"
        return {"content": inner + raw + tail, "headers": dict(_JSON)}

    def valid_text_plain() -> Request:
        body = session.dialect.encode(session.valid_inputs(1))
        return {"content": json.dumps(body).encode(), "headers": {"Content-Type": "text/plain"}}

    return {
        "nan": lambda: values(float("nan")),
        "infinity": lambda: values(float("inf")),
        "out_of_range": lambda: values(far),
        "wrong_shape": lambda: _with_data(session, [0.5] * (width + 3), [1, width + 3]),
        "wrong_dtype": lambda: _with_data(session, ["x"] * width, [1, *shape]),
        "empty": lambda: _with_data(session, [], [0, *shape]),
        "oversized": oversized,
        "deep_nesting": nested,
        "wrong_content_type": valid_text_plain,
        "non_utf8": lambda: {"content": b'{"inputs": "\xff\xfe\xfa"}', "headers": dict(_JSON)},
        "truncated_json": lambda: {"content": b'{"inputs": [[0.1, 0.2', "headers": dict(_JSON)},
    }


class InputHandlingProbe:
    name = "inputs"
    max_requests = 14
    order = 30

    def run(self, session: ProbeSession) -> Iterator[Finding]:
        session.prepare()
        outcomes: dict[str, dict[str, Any]] = {}
        for case, build in malformed_requests(session).items():
            try:
                exchange = session.send("POST", session.dialect.infer_url, **build())
            except EndpointTimeout:
                outcomes[case] = {"status": None, "outcome": "hang"}
                continue
            status = exchange.status
            if status in (401, 403, 429):
                outcome = "not_reached"  # refused before validation: says nothing
            elif 400 <= status < 500:
                outcome = "rejected"
            elif status >= 500:
                outcome = "server_error"
            else:
                outcome = "accepted"
            outcomes[case] = {
                "status": status,
                "outcome": outcome,
                "clear_error": outcome == "rejected" and bool(exchange.body.strip()),
            }
        accepted = sorted(c for c, o in outcomes.items() if o["outcome"] == "accepted")
        broken = sorted(c for c, o in outcomes.items() if o["outcome"] in ("server_error", "hang"))
        reached = [c for c, o in outcomes.items() if o["outcome"] != "not_reached"]
        session.observe(
            self.name,
            conclusive=bool(reached),
            validated=bool(reached) and not accepted and not broken,
            accepted=accepted,
            broken=broken,
        )
        evidence = {"cases": outcomes, "sample_size": len(outcomes)}
        if accepted:
            yield session.finding(
                "P107",
                "Malformed inputs are accepted",
                f"The endpoint answered HTTP 200 to {len(accepted)} of {len(outcomes)} malformed "
                f"inputs ({', '.join(accepted)}): the model is fed inputs nobody specified.",
                Severity.MEDIUM,
                {**evidence, "accepted": accepted},
                atlas=("AML.T0043", "AML.T0046"),
                owasp=("ML01",),
                cwe=("CWE-20",),
                mitigations=("input-validation",),
            )
        if broken:
            hang = any(outcomes[c]["outcome"] == "hang" for c in broken)
            yield session.finding(
                "P108",
                "Malformed inputs break the serving stack",
                f"{len(broken)} malformed inputs ({', '.join(broken)}) caused a server error or "
                "no answer instead of a 4xx: the stack around the model fails open to bad input.",
                Severity.HIGH if hang else Severity.MEDIUM,
                {**evidence, "broken": broken},
                atlas=("AML.T0029", "AML.T0049"),
                cwe=("CWE-20", "CWE-755"),
                mitigations=("input-validation", "error-hygiene"),
            )
