"""Declared vs observed: where the manifest promises a control the endpoint does not enforce.

A control that exists only on paper is worse than a known gap: reviewers, threat
rules and downstream owners rely on it. This probe sends nothing; it compares
what the other probes measured with what was declared, one finding per control.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bastion.findings import Finding, Severity
from bastion.probes.base import ProbeSession

__all__ = ["DeclaredControlsProbe"]


class DeclaredControlsProbe:
    name = "declared"
    max_requests = 0
    order = 100

    def run(self, session: ProbeSession) -> Iterator[Finding]:
        declared = session.endpoint.declared
        seen = session.observations
        auth = seen.get("auth", {})
        if declared.auth and auth.get("required") is False:
            yield self._mismatch(
                session, "P120", "authentication", True, "unauthenticated requests answered", auth
            )
        rate = seen.get("rate_limit", {})
        if declared.rate_limit and rate.get("conclusive") and rate.get("exceeded_declared"):
            observed = f"{rate['accepted']} requests answered in {rate['elapsed_s']}s" + (
                "" if rate.get("limited") else ", never limited"
            )
            yield self._mismatch(session, "P121", "rate limit", declared.rate_limit, observed, rate)
        output = seen.get("output", {})
        if declared.output_minimisation and output.get("output_kind") in ("scores", "logits"):
            observed = f"{output['output_kind']} with {output.get('decimals')} decimals"
            yield self._mismatch(session, "P122", "output minimisation", True, observed, output)
        inputs = seen.get("inputs", {})
        if declared.input_validation and inputs.get("conclusive") and not inputs.get("validated"):
            bad = inputs.get("accepted", []) + inputs.get("broken", [])
            observed = f"malformed inputs not rejected: {', '.join(bad)}"
            yield self._mismatch(session, "P123", "input validation", True, observed, inputs)

    @staticmethod
    def _mismatch(
        session: ProbeSession,
        rule_id: str,
        control: str,
        declared: Any,
        observed: str,
        measured: dict[str, Any],
    ) -> Finding:
        return session.finding(
            rule_id,
            f"Declared {control} is not enforced",
            f"The manifest declares {control} ({declared}), but the endpoint showed otherwise: "
            f"{observed}. Everything that trusts the declaration is exposed.",
            Severity.HIGH,
            {"control": control, "declared": declared, "observed": observed, "measured": measured},
            atlas=("AML.T0040",),
            cwe=("CWE-693",),
            mitigations=(control.replace(" ", "-"),),
            key=control,
        )
