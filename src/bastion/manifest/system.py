"""The whole system: elements, the data flows between them, and trust boundaries.

Cross-references (flows, boundaries, `driven_by`, `trains`, ...) are checked
here, after pydantic has checked each part, so every problem can be reported
with the exact YAML location of the offending value.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from bastion.findings import Location
from bastion.manifest.elements import _ID, AnyElement, ElementBase

__all__ = ["Assumption", "Boundary", "Flow", "Problem", "SystemInfo", "SystemManifest", "Trust"]

from bastion.yamlsource import Loc


class Trust(StrEnum):
    """Ordered from least to most trusted."""

    UNTRUSTED = "untrusted"
    PARTNER = "partner"
    INTERNAL = "internal"
    RESTRICTED = "restricted"

    @property
    def rank(self) -> int:
        return list(Trust).index(self)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SystemInfo(_Strict):
    name: str
    description: str | None = None
    owner: str | None = None
    default_trust: Trust = Trust.INTERNAL


class Flow(_Strict):
    id: str | None = Field(default=None, pattern=_ID)
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    data: str | None = None
    carries: Literal[
        "user_input",
        "predictions",
        "features",
        "training_data",
        "feedback",
        "artifact",
        "decision",
        "telemetry",
        "other",
    ] = "other"
    encrypted: bool | None = None
    authenticated: bool | None = None

    @property
    def key(self) -> str:
        return self.id or f"{self.source}->{self.target}"


class Boundary(_Strict):
    id: str = Field(pattern=_ID)
    name: str | None = None
    trust: Trust
    parent: str | None = None
    contains: tuple[str, ...] = ()


class Assumption(_Strict):
    """An accepted risk: rule `rule` does not apply to `element` (or to all when omitted)."""

    rule: str
    element: str | None = None
    reason: str = Field(min_length=3)


class Problem(BaseModel):
    loc: Loc
    message: str
    hint: str | None = None


class SystemManifest(_Strict):
    version: Literal[1] = 1
    system: SystemInfo
    elements: tuple[AnyElement, ...] = Field(min_length=1)
    flows: tuple[Flow, ...] = ()
    boundaries: tuple[Boundary, ...] = ()
    assumptions: tuple[Assumption, ...] = ()
    catalogues: tuple[str, ...] = Field(
        default=(), description="Extra threat catalogue files, relative to this manifest."
    )

    _source: str | None = PrivateAttr(default=None)
    _lines: dict[Loc, tuple[int, int]] = PrivateAttr(default_factory=dict)

    # -- lookups -----------------------------------------------------------------

    def element(self, element_id: str) -> ElementBase:
        for el in self.elements:
            if el.id == element_id:
                return el
        raise KeyError(element_id)

    def of_type(self, type_name: str) -> list[Any]:
        return [el for el in self.elements if el.type == type_name]

    def ids(self) -> set[str]:
        return {el.id for el in self.elements}

    @property
    def source_path(self) -> str | None:
        return self._source

    def attach_source(self, path: str | None, lines: dict[Loc, tuple[int, int]]) -> None:
        self._source = path
        self._lines = lines

    def location(self, loc: Loc) -> Location | None:
        if self._source is None:
            return None
        line, col = self._lines.get(loc, (None, None))
        return Location(path=self._source, line=line, column=col)

    def location_of(self, element_id: str) -> Location | None:
        for i, el in enumerate(self.elements):
            if el.id == element_id:
                return self.location(("elements", i))
        for i, fl in enumerate(self.flows):
            if fl.key == element_id:
                return self.location(("flows", i))
        for i, b in enumerate(self.boundaries):
            if b.id == element_id:
                return self.location(("boundaries", i))
        return self.location(())

    # -- cross-reference checks --------------------------------------------------

    def problems(self) -> Iterator[Problem]:
        yield from self._duplicate_ids()
        known = self.ids()
        yield from self._dangling(known)
        yield from self._boundary_problems(known)

    def _duplicate_ids(self) -> Iterator[Problem]:
        seen: dict[str, str] = {}
        groups: list[tuple[str, list[str | None]]] = [
            ("elements", [el.id for el in self.elements]),
            ("flows", [fl.id for fl in self.flows]),
            ("boundaries", [b.id for b in self.boundaries]),
        ]
        for section, ids in groups:
            for i, ident in enumerate(ids):
                if ident is None:
                    continue
                if ident in seen:
                    yield Problem(
                        loc=(section, i, "id"),
                        message=f"duplicate id {ident!r} (already used in {seen[ident]})",
                        hint="give every element, flow and boundary its own id",
                    )
                else:
                    seen[ident] = section

    def _refs(self) -> Iterator[tuple[Loc, str, str]]:
        """Every (location, referenced id, what kind of reference) in the manifest."""
        for i, fl in enumerate(self.flows):
            yield ("flows", i, "from"), fl.source, "flow source"
            yield ("flows", i, "to"), fl.target, "flow target"
        for i, b in enumerate(self.boundaries):
            for j, member in enumerate(b.contains):
                yield ("boundaries", i, "contains", j), member, "boundary member"
        list_fields = ("driven_by", "trains", "datasets", "ships", "covers", "stores")
        for i, el in enumerate(self.elements):
            for name in list_fields:
                for j, ref in enumerate(getattr(el, name, ())):
                    yield ("elements", i, name, j), ref, name
            model_ref = getattr(el, "model", None)
            if isinstance(model_ref, str):
                yield ("elements", i, "model"), model_ref, "served model"
        for i, a in enumerate(self.assumptions):
            if a.element is not None:
                yield ("assumptions", i, "element"), a.element, "assumption element"

    def _dangling(self, known: set[str]) -> Iterator[Problem]:
        for loc, ref, what in self._refs():
            if ref not in known:
                near = _closest(ref, known)
                yield Problem(
                    loc=loc,
                    message=f"{what} {ref!r} is not an element id",
                    hint=f"did you mean {near!r}?" if near else "declare the element first",
                )

    def _boundary_problems(self, known: set[str]) -> Iterator[Problem]:
        by_id = {b.id: (i, b) for i, b in enumerate(self.boundaries)}
        for i, b in enumerate(self.boundaries):
            if b.parent is not None and b.parent not in by_id:
                yield Problem(
                    loc=("boundaries", i, "parent"),
                    message=f"parent boundary {b.parent!r} does not exist",
                    hint="name a boundary id declared under 'boundaries'",
                )
        for i, b in enumerate(self.boundaries):
            seen = [b.id]
            cur = b.parent
            while cur is not None and cur in by_id:
                if cur in seen:
                    chain = " → ".join([*seen, cur])
                    yield Problem(
                        loc=("boundaries", i, "parent"),
                        message=f"boundary nesting forms a cycle: {chain}",
                        hint="a boundary cannot be inside itself; remove one 'parent'",
                    )
                    break
                seen.append(cur)
                cur = by_id[cur][1].parent
        for el_id in sorted(known):
            holders = [b.id for b in self.boundaries if el_id in b.contains]
            for a in holders:
                for other in holders:
                    if a < other and not (
                        self._is_ancestor(a, other) or self._is_ancestor(other, a)
                    ):
                        idx = by_id[other][0]
                        pos = by_id[other][1].contains.index(el_id)
                        yield Problem(
                            loc=("boundaries", idx, "contains", pos),
                            message=f"{el_id!r} is in both {a!r} and {other!r}, which are "
                            "not nested",
                            hint="put each element in one boundary (nest boundaries instead)",
                        )

    def _is_ancestor(self, ancestor: str, child: str) -> bool:
        by_id = {b.id: b for b in self.boundaries}
        cur = by_id[child].parent if child in by_id else None
        steps = 0
        while cur is not None and steps <= len(by_id):
            if cur == ancestor:
                return True
            cur = by_id[cur].parent if cur in by_id else None
            steps += 1
        return False


def _closest(word: str, choices: set[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return found[0] if found else None
