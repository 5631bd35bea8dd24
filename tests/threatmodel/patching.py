"""Variants of a baseline manifest, addressed by element id, for the threat test table.

A patch has `set` ({"elements.clf.output.kind": "scores"}: section, id, then keys),
`add` ({"elements": [...], "flows": [...], "boundaries": [...]}) and `remove`
(element ids; their flows and boundary memberships go too).
"""

from __future__ import annotations

import copy
from typing import Any


def _find(items: list[dict[str, Any]], ident: str) -> dict[str, Any]:
    for item in items:
        key = item.get("id") or f"{item.get('from')}->{item.get('to')}"
        if ident in (item.get("id"), key):
            return item
    raise KeyError(ident)


def apply(base: dict[str, Any], patch: dict[str, Any] | None) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    patch = patch or {}
    for ident in patch.get("remove", []):
        doc["elements"] = [e for e in doc["elements"] if e["id"] != ident]
        doc["flows"] = [f for f in doc.get("flows", []) if ident not in (f["from"], f["to"])]
        for b in doc.get("boundaries", []):
            b["contains"] = [m for m in b.get("contains", []) if m != ident]
    for section, items in patch.get("add", {}).items():
        doc.setdefault(section, []).extend(copy.deepcopy(items))
    for path, value in patch.get("set", {}).items():
        section, ident, *keys = path.split(".")
        target = _find(doc[section], ident)
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        if value is None:
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = value
    return doc
