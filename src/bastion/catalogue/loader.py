"""Load the built-in catalogue and users' additional catalogue files, cross-checked."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bastion.catalogue.model import Catalogue
from bastion.errors import ConfigError
from bastion.yamlsource import compose_lines, read_text, validate

__all__ = ["atlas_table", "builtin_catalogue", "load_catalogue", "parse_catalogue"]

_BUILTIN_FILES = ("mitigations.yaml", "threats.yaml")


@lru_cache(maxsize=1)
def atlas_table() -> dict[str, Any]:
    """ATLAS ids → names (techniques, tactics, mitigations), generated from ATLAS data."""
    text = resources.files("bastion.catalogue").joinpath("atlas.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    return {
        "version": raw["version"],
        "techniques": {t["id"]: t for t in raw["techniques"]},
        "tactics": {t["id"]: t for t in raw["tactics"]},
        "mitigations": {m["id"]: m for m in raw["mitigations"]},
    }


def parse_catalogue(text: str, path: str) -> Catalogue:
    data, lines = compose_lines(text, path)
    if not isinstance(data, dict):
        raise ConfigError(
            "a catalogue must be a mapping with 'threats' and/or 'mitigations'", path=path, line=1
        )
    return validate(Catalogue, data, lines, path)


@lru_cache(maxsize=1)
def builtin_catalogue() -> Catalogue:
    cat = Catalogue()
    for name in _BUILTIN_FILES:
        text = resources.files("bastion.catalogue").joinpath(name).read_text("utf-8")
        cat = cat.merged(parse_catalogue(text, f"bastion/catalogue/{name}"))
    _check(cat, "built-in catalogue")
    return cat


def load_catalogue(extra: tuple[str | Path, ...] = ()) -> Catalogue:
    """The built-in catalogue plus user files; ids must stay unique and references resolve."""
    cat = builtin_catalogue()
    for path in extra:
        cat = cat.merged(parse_catalogue(read_text(path, what="catalogue"), str(path)))
    if extra:
        _check(cat, ", ".join(str(p) for p in extra))
    return cat


def _check(cat: Catalogue, where: str) -> None:
    atlas = atlas_table()
    seen: set[str] = set()
    for item_id in [t.id for t in cat.threats] + [m.id for m in cat.mitigations]:
        if item_id in seen:
            raise ConfigError(f"duplicate catalogue id {item_id!r}", path=where)
        seen.add(item_id)
    mitigation_ids = {m.id for m in cat.mitigations}
    for t in cat.threats:
        for adv in t.mitigations:
            if adv.id not in mitigation_ids:
                raise ConfigError(f"threat {t.id} names unknown mitigation {adv.id!r}", path=where)
        for tech in t.tags.atlas:
            if tech not in atlas["techniques"]:
                raise ConfigError(f"threat {t.id}: {tech!r} is not an ATLAS technique", path=where)
    for m in cat.mitigations:
        for ref in m.atlas:
            if ref not in atlas["mitigations"]:
                raise ConfigError(
                    f"mitigation {m.id}: {ref!r} is not an ATLAS mitigation", path=where
                )
