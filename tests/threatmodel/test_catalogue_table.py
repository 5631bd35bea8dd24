"""Every catalogue threat has a condition that fires on one variant and stays quiet on another."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.catalogue import builtin_catalogue
from bastion.manifest import parse_manifest
from bastion.threatmodel import threat_model
from tests.threatmodel.patching import apply

HERE = Path(__file__).parent
BASE = yaml.safe_load((HERE / "base.yaml").read_text())
CASES: dict[str, Any] = yaml.safe_load((HERE / "cases.yaml").read_text())


def _fired(patch: dict[str, Any] | None) -> set[str]:
    manifest = parse_manifest(yaml.safe_dump(apply(BASE, patch)), "variant.yaml")
    return {f.rule_id for f in threat_model(manifest).findings}


def test_baseline_is_quiet() -> None:
    assert _fired(None) == set()


def test_every_threat_has_a_row() -> None:
    ids = {t.id for t in builtin_catalogue().threats}
    assert len(ids) >= 30
    assert ids == set(CASES), f"missing rows: {ids - set(CASES)}; stale rows: {set(CASES) - ids}"


@pytest.mark.parametrize("threat_id", sorted(CASES))
def test_threat_fires(threat_id: str) -> None:
    assert threat_id in _fired(CASES[threat_id]["fires"])


@pytest.mark.parametrize("threat_id", sorted(CASES))
def test_threat_quiet(threat_id: str) -> None:
    assert threat_id not in _fired(CASES[threat_id]["quiet"])
