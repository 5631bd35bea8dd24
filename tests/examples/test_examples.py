"""The bundled examples yield the threats a reviewer expects, only while their cause is there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.manifest import load_manifest, parse_manifest
from bastion.threatmodel import threat_model
from tests.threatmodel.patching import apply

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EXPECTED: dict[str, set[tuple[str, str]]] = {
    "content-moderation": {
        ("T001", "nsfw_classifier"),  # uploads from the internet reach the classifier
        ("T003", "nsfw_classifier"),  # scores go back to uploaders
        ("T005", "nsfw_classifier"),  # public ImageNet base → transfer attacks
        ("T009", "nsfw_classifier"),  # retrains on user reports
        ("T013", "nsfw_classifier"),  # third-party base model
        ("T014", "nsfw_classifier"),  # torch pickle checkpoint
        ("T018", "publish_decision"),  # sole gate, no fallback
        ("T019", "publish_decision"),  # high impact, no human review
        ("T030", "image_decoder"),  # untrusted images parsed unsandboxed
        ("T036", "retrain"),  # periodic retrain on unvetted feedback
    },
    "fraud-scoring": {
        ("T001", "fraud_model"),
        ("T003", "fraud_model"),  # partners get scores with 8 decimals
        ("T006", "fraud_model"),  # ... and no rate limit → extraction
        ("T007", "fraud_model"),  # personal data + scores → inversion
        ("T008", "fraud_model"),
        ("T011", "fraud_model"),  # chargeback feed from the card network
        ("T014", "fraud_model"),  # joblib artifact
        ("T018", "decline_decision"),
        ("T019", "decline_decision"),
        ("T020", "fraud_model"),  # one model, two decisions
        ("T024", "audit"),
        ("T026", "score_api"),
    },
    "mobile-app": {
        ("T002", "ondevice_model"),  # camera input: physical-world evasion
        ("T013", "ondevice_model"),
        ("T016", "ondevice_model"),  # shipped inside the APK
        ("T017", "leaflens_app->rewards"),  # the app reports its own verdict
        ("T027", "cloud_api"),  # no auth
        ("T029", "cloud_api"),  # verbose errors
        ("T036", "retrain"),
        ("T037", "leaflens_app"),
    },
}

NOT_EXPECTED: dict[str, set[tuple[str, str]]] = {
    "content-moderation": {
        ("T027", "upload_api"),
        ("T026", "upload_api"),
        ("T016", "nsfw_classifier"),
    },
    "fraud-scoring": {("T027", "score_api"), ("T016", "fraud_model"), ("T018", "partner_decision")},
    "mobile-app": {("T014", "ondevice_model"), ("T001", "cloud_model")},
}

# (example, rule, subject, patch removing the cause)
TOGGLES: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "content-moderation",
        "T003",
        "nsfw_classifier",
        {"set": {"elements.nsfw_classifier.output": {"kind": "label"}}},
    ),
    (
        "content-moderation",
        "T009",
        "nsfw_classifier",
        {"set": {"elements.retrain.uses_feedback": False}},
    ),
    (
        "content-moderation",
        "T019",
        "publish_decision",
        {"set": {"elements.publish_decision.human_review": True}},
    ),
    (
        "content-moderation",
        "T001",
        "nsfw_classifier",
        {"set": {"boundaries.internet.trust": "partner"}},
    ),
    (
        "fraud-scoring",
        "T006",
        "fraud_model",
        {"set": {"elements.score_api.controls.rate_limit": "100/minute"}},
    ),
    ("fraud-scoring", "T020", "fraud_model", {"set": {"elements.partner_decision.driven_by": []}}),
    (
        "fraud-scoring",
        "T014",
        "fraud_model",
        {"set": {"elements.fraud_model.artifact.format": "onnx"}},
    ),
    ("fraud-scoring", "T011", "fraud_model", {"remove": ["chargeback_feed"]}),
    (
        "mobile-app",
        "T016",
        "ondevice_model",
        {"set": {"elements.ondevice_model.runs_on": "server", "elements.leaflens_app.ships": []}},
    ),
    (
        "mobile-app",
        "T017",
        "leaflens_app->rewards",
        {"set": {"flows.leaflens_app->rewards.authenticated": True}},
    ),
    ("mobile-app", "T027", "cloud_api", {"set": {"elements.cloud_api.controls.auth": "api_key"}}),
]


def _pairs(manifest_text: str, name: str) -> set[tuple[str, str]]:
    report = threat_model(parse_manifest(manifest_text, name))
    return {(f.rule_id, f.subject.id) for f in report.findings}


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example_yields_expected_threats(example: str) -> None:
    path = EXAMPLES / example / "system.yaml"
    found = {(f.rule_id, f.subject.id) for f in threat_model(load_manifest(path)).findings}
    assert EXPECTED[example] <= found, f"missing: {EXPECTED[example] - found}"
    assert not (NOT_EXPECTED[example] & found), f"unexpected: {NOT_EXPECTED[example] & found}"


@pytest.mark.parametrize(("example", "rule", "subject", "patch"), TOGGLES)
def test_removing_the_cause_removes_the_finding(
    example: str, rule: str, subject: str, patch: dict[str, Any]
) -> None:
    original = yaml.safe_load((EXAMPLES / example / "system.yaml").read_text())
    with_cause = _pairs(yaml.safe_dump(original), "with.yaml")
    without_cause = _pairs(yaml.safe_dump(apply(original, patch)), "without.yaml")
    assert (rule, subject) in with_cause
    assert (rule, subject) not in without_cause


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_findings_point_at_the_manifest_line(example: str) -> None:
    path = EXAMPLES / example / "system.yaml"
    lines = path.read_text().splitlines()
    for f in threat_model(load_manifest(path)).findings:
        assert f.subject.location is not None and f.subject.location.line is not None
        text = lines[f.subject.location.line - 1]
        if f.subject.kind.value == "element":
            assert f"id: {f.subject.id}" in text
        else:
            src, dst = f.subject.id.split("->")
            assert f"from: {src}" in text and f"to: {dst}" in text
