"""What a normal answer reveals: label, top-k, scores or logits, how precise, and what else.

Scores with many decimals are what score-based evasion, extraction and
membership inference feed on; the decimals are counted on the wire (the JSON
literals), not after float conversion, so the evidence is what a client gets.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import numpy as np

from bastion.findings import Finding, Severity
from bastion.probes.base import ProbeSession
from bastion.target.base import OutputKind
from bastion.target.dialects import OipDialect, extract
from bastion.target.remote import observed_output

__all__ = ["OutputExposureProbe"]

_OIP_STANDARD = {"model_name", "outputs"}


def _decimals(value: Any) -> int | None:
    if not isinstance(value, Decimal):
        return None
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else None


def _score_literals(session: ProbeSession, body: Any) -> list[Any]:
    dialect = session.dialect
    if isinstance(dialect, OipDialect):
        for out in body.get("outputs") or []:
            if not isinstance(out, dict):
                continue
            if out.get("name") == dialect.scores_output or str(
                out.get("datatype", "")
            ).upper().startswith("FP"):
                return list(np.asarray(out.get("data") or [], dtype=object).reshape(-1))
        return []
    field = dialect.mapping.scores_field
    if not field:
        return []
    try:
        rows = extract(body, field)
    except Exception:
        return []
    flat: list[Any] = []
    for row in rows if isinstance(rows, list) else []:
        flat += list(row.values()) if isinstance(row, dict) else list(np.ravel(row))
    return flat


def _extra_fields(session: ProbeSession, body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    if isinstance(session.dialect, OipDialect):
        extra = [k for k, v in body.items() if k not in _OIP_STANDARD and v not in ({}, None)]
        return sorted(extra)
    mapping = session.dialect.mapping
    wanted = [p for p in (mapping.label_field, mapping.scores_field) if p]
    tops = {p.split(".")[0].split("[]")[0] for p in wanted}
    extra = [k for k in body if k not in tops]
    # Keys inside each answered row beyond the mapped ones (e.g. per-row timing).
    leaves = {p.split("[].")[-1] for p in wanted if "[]." in p}
    for top in tops:
        rows = body.get(top)
        if isinstance(rows, list) and rows and isinstance(rows[0], dict) and leaves:
            extra += [f"{top}[].{k}" for k in rows[0] if k not in leaves]
    return sorted(extra)


class OutputExposureProbe:
    name = "output"
    max_requests = 3
    order = 10

    def run(self, session: ProbeSession) -> Iterator[Finding]:
        session.prepare()
        samples = 3
        exchange = session.infer(session.valid_inputs(samples))
        if exchange.status != 200:
            session.observe(self.name, status=exchange.status, conclusive=False)
            return
        body = exchange.json(parse_float=Decimal)
        _, scores = session.dialect.decode(exchange.json(), samples)
        kind = observed_output(scores)
        digits = [d for d in map(_decimals, _score_literals(session, body)) if d is not None]
        decimals = max(digits) if digits else None
        sums_to_one = None
        n_classes = None
        if scores is not None:
            n_classes = int(scores.shape[1])
            if kind is not OutputKind.TOP_K:
                sums_to_one = bool(np.allclose(scores.sum(axis=1), 1.0, atol=1e-3))
        extra = _extra_fields(session, body)
        evidence = {
            "output_kind": kind.value,
            "decimals": decimals,
            "classes_returned": n_classes,
            "scores_sum_to_one": sums_to_one,
            "sample_size": samples,
        }
        session.observe(self.name, conclusive=True, extra_fields=extra, **evidence)
        if kind.rank >= OutputKind.TOP_K.rank:
            fine = kind is OutputKind.TOP_K and (decimals is None or decimals <= 2)
            severity = Severity.MEDIUM if fine else Severity.HIGH
            what = {"top_k": "top-k scores", "scores": "full scores", "logits": "raw logits"}
            yield session.finding(
                "P101",
                f"Endpoint returns {what[kind.value]}",
                f"Every answer carries {what[kind.value]} for {n_classes} classes"
                + (f" with up to {decimals} decimals" if decimals is not None else "")
                + "; score-based evasion, model extraction and membership inference feed on "
                "them. Return labels (or top-1 with coarse confidence) instead.",
                severity,
                evidence,
                atlas=("AML.T0024.002", "AML.T0024.000", "AML.T0043.001", "AML.T0063"),
                owasp=("ML04", "ML05"),
                cwe=("CWE-200",),
                mitigations=("output-minimisation",),
            )
        if extra:
            yield session.finding(
                "P102",
                "Answers carry fields beyond the prediction",
                f"Responses include {', '.join(extra)}: model versions, internal ids, hosts or "
                "timings help an attacker fingerprint the model and time its updates.",
                Severity.LOW,
                {"extra_fields": extra, "sample_size": samples},
                atlas=("AML.T0063", "AML.T0014"),
                cwe=("CWE-200",),
                mitigations=("output-minimisation",),
            )
