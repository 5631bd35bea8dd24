"""Findings follow the measurement: severity at a realistic budget, evidence with its n."""

from __future__ import annotations

from typing import Any

import numpy as np

from bastion.attacks import Access, AttackKind, AttackResult
from bastion.attacks.verdict import to_finding
from bastion.findings import Severity


def _evasion(
    queries: list[int], success: list[bool], access: Access = Access.LABEL
) -> AttackResult:
    n = len(queries)
    return AttackResult(
        attack="hopskipjump-l2",
        kind=AttackKind.EVASION,
        access=access,
        n=n,
        total_queries=sum(queries),
        wall_time_s=0.1,
        metrics={"success_rate": float(np.mean(success)), "budget_per_point": 1000.0},
        success=np.array(success),
        queries=np.array(queries),
        spent=np.array(queries),
        l2=np.where(success, 1.0, np.nan),
        linf=np.where(success, 0.2, np.nan),
    )


def test_severity_is_read_at_the_realistic_budget() -> None:
    result = _evasion([50, 60, 900, 950], [True, True, True, True])
    assert to_finding(result).severity is Severity.HIGH  # all fooled within the run's budget
    # a rate limit that allows only 100 queries per point per day halves the success
    tight = to_finding(result, realistic_budget=100)
    assert tight.evidence["success_at_realistic_budget"] == 0.5
    assert tight.severity is Severity.HIGH
    tighter = to_finding(result, realistic_budget=40)
    assert tighter.severity is Severity.INFO
    assert tighter.evidence["realistic_budget"] == 40


def test_rule_follows_access_and_evidence_carries_the_sample_size() -> None:
    finding = to_finding(_evasion([10, 20], [True, False], access=Access.SCORES))
    assert finding.rule_id == "A102" and finding.analyser == "attack"
    assert finding.evidence["sample_size"] == 2
    assert finding.evidence["queries_median"] == 10.0
    assert "AML.T0043.001" in finding.references.atlas


def test_membership_and_extraction_ladders() -> None:
    def other(kind: AttackKind, **metrics: float) -> AttackResult:
        return AttackResult("x", kind, Access.SCORES, 100, 100, 0.1, metrics)

    assert to_finding(other(AttackKind.EXTRACTION, fidelity=0.95)).severity is Severity.HIGH
    assert to_finding(other(AttackKind.EXTRACTION, fidelity=0.6)).severity is Severity.LOW
    assert to_finding(other(AttackKind.MEMBERSHIP, auc=0.51, tpr_at_1pct_fpr=0.0)).severity is (
        Severity.INFO
    )
    weak = other(AttackKind.MEMBERSHIP, auc=0.55, tpr_at_1pct_fpr=0.12)
    assert to_finding(weak).severity is Severity.HIGH  # sure about some members


def test_extraction_severity_follows_what_the_api_added_to_the_attackers_own_labels(
    digits: dict[str, Any],
) -> None:
    """Measured on a real model: with many labels of its own the attacker gains little."""
    from bastion.attacks import AttackData, Oracle
    from bastion.registry import registry
    from bastion.target import SklearnTarget

    def run(labelled: int) -> AttackResult:
        data = AttackData(
            space=digits["space"],
            x=digits["x_train"][:5],
            y=digits["y_train"][:5],
            labelled=(digits["x_train"][:labelled], digits["y_train"][:labelled]),
            pool=digits["x_train"][600:],
            x_eval=digits["x_test"][:200],
            y_eval=digits["y_test"][:200],
        )
        attack = registry("attacks").get("extraction-natural")(checkpoints=(300,))
        return attack.run(Oracle(SklearnTarget(digits["model"])), data, budget=300, seed=0)

    few, many = run(20), run(600)
    assert few.metrics["baseline_rows"] == 20 and many.metrics["baseline_rows"] == 600
    # the copy from 300 answers is as good either way; the free copy is not
    assert few.metrics["fidelity"] == many.metrics["fidelity"] > 0.85
    assert few.metrics["baseline_fidelity"] < 0.75 < many.metrics["baseline_fidelity"]
    assert to_finding(few).severity is Severity.HIGH
    gained = many.metrics["fidelity"] - many.metrics["baseline_fidelity"]
    assert gained < 0.1 and to_finding(many).severity.rank < Severity.HIGH.rank
    assert to_finding(many).evidence["fidelity_gain"] == gained
    assert "own 600 labelled rows, with no query" in to_finding(many).message


def test_no_labels_of_its_own_leaves_the_fidelity_ladder_alone() -> None:
    result = AttackResult(
        attack="extraction-natural",
        kind=AttackKind.EXTRACTION,
        access=Access.LABEL,
        n=100,
        total_queries=500,
        wall_time_s=0.1,
        metrics={"fidelity": 0.95},
    )
    assert to_finding(result).severity is Severity.HIGH
    capped = AttackResult(
        **{**result.__dict__, "metrics": {"fidelity": 0.95, "baseline_fidelity": 0.94}}
    )
    assert to_finding(capped).severity is Severity.LOW
