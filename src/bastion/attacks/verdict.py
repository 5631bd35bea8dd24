"""From measured attack results to Findings whose severity follows the measurement.

Severity is read at a realistic budget: the number of queries an attacker can
send per point within a day at the observed rate limit (or the run's budget
when no limit is known). A success rate of 50 % at that budget is high; a
fidelity of 90 % after the allowed queries means the model is in effect copied —
unless the attacker's own labelled data, with no query at all, already gives a
copy about as good: then severity follows the fidelity the API added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bastion.attacks.base import AttackKind, AttackResult
from bastion.attacks.oracle import Access
from bastion.findings import Confidence, Finding, References, Severity, Subject, SubjectKind

__all__ = ["RULES", "Rule", "to_finding"]


@dataclass(frozen=True)
class Rule:
    rule_id: str
    title: str
    atlas: tuple[str, ...]
    owasp: tuple[str, ...]
    mitigations: tuple[str, ...]  # ids in bastion's mitigation catalogue


RULES: dict[str, Rule] = {
    "A101": Rule(
        "A101",
        "Evasion with labels only (decision-based attack)",
        ("AML.T0015", "AML.T0043.001"),
        ("ML01",),
        ("M04", "M05", "M18"),
    ),
    "A102": Rule(
        "A102",
        "Evasion with scores (score-based attack)",
        ("AML.T0015", "AML.T0043.001"),
        ("ML01",),
        ("M02", "M04", "M05", "M18"),
    ),
    "A103": Rule(
        "A103",
        "Evasion by transfer from a surrogate model",
        ("AML.T0015", "AML.T0043.002", "AML.T0005"),
        ("ML01",),
        ("M04", "M06", "M18"),
    ),
    "A201": Rule(
        "A201",
        "Model extraction through the inference API",
        ("AML.T0024.002", "AML.T0005"),
        ("ML05",),
        ("M02", "M04", "M06", "M03"),
    ),
    "A301": Rule(
        "A301",
        "Training-data membership inference",
        ("AML.T0024.000",),
        ("ML04",),
        ("M02", "M18", "M04"),
    ),
}


# Fidelity gained through the API over the no-query baseline: high from 10 points,
# medium from 3 (one row in 33 of the evaluation set), low above 0.
GAIN_CUTS = (0.10, 0.03, 0.0)


def rule_for(result: AttackResult) -> Rule:
    if result.kind is AttackKind.EXTRACTION:
        return RULES["A201"]
    if result.kind is AttackKind.MEMBERSHIP:
        return RULES["A301"]
    if result.params.get("transfer"):
        return RULES["A103"]
    return RULES["A101"] if result.access is Access.LABEL else RULES["A102"]


def success_at(result: AttackResult, budget: int) -> float:
    """Share of points fooled within `budget` queries each."""
    if result.success is None or result.queries is None or result.n == 0:
        return 0.0
    return float(np.mean(result.success & (result.queries <= budget)))


def _severity(result: AttackResult, realistic: int | None) -> tuple[Severity, dict[str, float]]:
    m = result.metrics
    if result.kind is AttackKind.EVASION:
        budget = realistic or int(m.get("budget_per_point", 0)) or 10**9
        rate = success_at(result, budget)
        sev = _ladder(rate, (0.5, 0.2, 0.0))
        return sev, {"realistic_budget": float(budget), "success_at_realistic_budget": rate}
    if result.kind is AttackKind.EXTRACTION:
        fid = m.get("fidelity", 0.0)
        sev = _ladder(fid, (0.9, 0.75, 0.5))
        if "baseline_fidelity" not in m:
            return sev, {}
        # What the API gave away is the agreement above what the attacker's own
        # labelled data gives for free; a copy no better than that is no leak.
        gain = fid - m["baseline_fidelity"]
        cap = _ladder(gain, GAIN_CUTS)
        return (cap if cap.rank < sev.rank else sev), {"fidelity_gain": gain}
    auc, tpr = m.get("auc", 0.5), m.get("tpr_at_1pct_fpr", 0.0)
    if auc >= 0.75 or tpr >= 0.1:
        return Severity.HIGH, {}
    return _ladder(auc - 0.5, (0.25, 0.1, 0.03)), {}


def _ladder(value: float, cuts: tuple[float, float, float]) -> Severity:
    high, medium, low = cuts
    if value >= high:
        return Severity.HIGH
    if value >= medium:
        return Severity.MEDIUM
    if value > low:
        return Severity.LOW
    return Severity.INFO


def _stop_note(result: AttackResult) -> str:
    reason = result.params.get("stopped_by_endpoint")
    if not reason:
        return ""
    return (
        f" The endpoint stopped the attack after {result.total_queries} queries ({reason}); "
        "the figures are what it achieved until then."
    )


def _message(result: AttackResult, extra: dict[str, float]) -> str:
    m = result.metrics
    if result.kind is AttackKind.EVASION:
        rate = extra.get("success_at_realistic_budget", m.get("success_rate", 0.0))
        ran = int(m.get("budget_per_point", 0))
        allowed = int(extra.get("realistic_budget", ran))
        budget = min(ran, allowed) if ran else allowed
        eps = m.get("eps")
        norm = str(result.params.get("norm", "l2"))
        where = (
            f"within {norm.upper()} distance {eps:.4g} of each point"
            if eps is not None
            else "at any distance (no success radius was set)"
        )
        text = (
            f"{result.attack} fooled the model on {rate:.0%} of {result.n} points "
            f"{where}, within {budget} queries each, with {result.access.value} access"
            + (
                f" (a day at the observed rate limit allows {allowed})."
                if allowed > budget
                else "."
            )
            + _stop_note(result)
        )
        if result.params.get("surrogate") == "public":
            text += " The adversarials were crafted on public weights, with no query."
        return text
    if result.kind is AttackKind.EXTRACTION:
        text = (
            f"{result.attack}: a surrogate trained on {result.total_queries} answers agrees "
            f"with the model on {m.get('fidelity', 0.0):.0%} of {result.n} held-out inputs."
        )
        if "baseline_fidelity" in m:
            text += (
                f" A copy trained on the attacker's own {int(m.get('baseline_rows', 0))} "
                f"labelled rows, with no query, agrees on {m['baseline_fidelity']:.0%}: "
                f"the API added {100 * extra.get('fidelity_gain', 0.0):+.0f} points."
            )
        if m.get("held_rows"):
            text += (
                f" The endpoint held {int(m['held_rows'])} rows without an answer; "
                "the attacker dropped them and went on."
            )
        return text + _stop_note(result)
    return (
        f"{result.attack}: membership AUC {m.get('auc', 0.5):.2f}, "
        f"TPR {m.get('tpr_at_1pct_fpr', 0.0):.0%} at 1% FPR, over {result.n} records."
    )


def to_finding(
    result: AttackResult, subject: Subject | None = None, *, realistic_budget: int | None = None
) -> Finding:
    """One Finding per attack run; evidence is the measured result."""
    rule = rule_for(result)
    severity, extra = _severity(result, realistic_budget)
    evidence = {**result.evidence(), **extra}
    return Finding(
        rule_id=rule.rule_id,
        title=rule.title,
        message=_message(result, extra),
        severity=severity,
        confidence=Confidence.HIGH,
        analyser="attack",
        subject=subject or Subject(kind=SubjectKind.ENDPOINT, id="target"),
        evidence=evidence,
        references=References(atlas=rule.atlas, owasp=rule.owasp),
        mitigations=rule.mitigations,
        key=result.attack,
    )
