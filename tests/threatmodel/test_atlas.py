"""ATLAS ids in the catalogue are real, and the shipped table matches the source data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from bastion.catalogue import atlas_table, builtin_catalogue

ROOT = Path(__file__).resolve().parents[2]
ATLAS_SOURCE = ROOT.parent / "shared" / "data" / "atlas" / "ATLAS.yaml"


def test_every_referenced_atlas_id_exists() -> None:
    atlas = atlas_table()
    cat = builtin_catalogue()
    for threat in cat.threats:
        assert threat.tags.atlas, f"{threat.id} has no ATLAS technique"
        for tech in threat.tags.atlas:
            assert tech in atlas["techniques"], (threat.id, tech)
    for mitigation in cat.mitigations:
        for ref in mitigation.atlas:
            assert ref in atlas["mitigations"], (mitigation.id, ref)


def test_every_mitigation_is_used_and_every_threat_is_mitigated() -> None:
    cat = builtin_catalogue()
    used = {m.id for t in cat.threats for m in t.mitigations}
    assert used == {m.id for m in cat.mitigations}
    assert all(t.mitigations for t in cat.threats)


def test_catalogue_covers_the_required_threat_classes() -> None:
    categories = {t.category for t in builtin_catalogue().threats}
    assert {
        "evasion",
        "extraction",
        "privacy",
        "poisoning",
        "supply-chain",
        "over-trust",
        "operations",
        "availability",
        "reconnaissance",
        "output-integrity",
        "conventional-stack",
    } <= categories


def test_shipped_table_matches_the_generator(tmp_path: Path) -> None:
    if not ATLAS_SOURCE.exists():
        pytest.fail(f"ATLAS source data missing at {ATLAS_SOURCE}")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_atlas
    finally:
        sys.path.pop(0)
    out = tmp_path / "atlas.yaml"
    assert gen_atlas.main(["gen_atlas", str(ATLAS_SOURCE), str(out)]) == 0
    shipped = ROOT / "src" / "bastion" / "catalogue" / "atlas.yaml"
    assert yaml.safe_load(out.read_text()) == yaml.safe_load(shipped.read_text())
