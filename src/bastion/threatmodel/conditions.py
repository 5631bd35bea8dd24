"""A small declarative condition language for threats — data, never `eval`.

A condition is one of:

* ``{attr: PATH, <op>: VALUE}`` with op in eq, ne, in, not_in, gt, gte, lt, lte,
  exists — PATH is a dotted attribute of the subject (``controls.rate_limit``,
  ``output.kind``) or a derived one (``trust``, ``exposed``, ``crosses_boundary``);
* ``{all: [...]}``, ``{any: [...]}``, ``{not: ...}``;
* ``{related: RELATION, where: COND, min: 1, max: N}`` — how many elements in a
  relation (upstream, decisions, trainers, endpoints, ...) satisfy ``where``.

Evaluation returns the facts it looked at (attribute values, matching ids), so
every threat finding carries the manifest evidence that triggered it.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bastion.threatmodel.graph import RELATIONS, Node, SystemGraph

__all__ = ["Condition", "Facts", "evaluate", "lookup"]

Facts = dict[str, Any]
_OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists")
_MISSING = object()


class _Cond(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AttrCond(_Cond):
    attr: str
    eq: Any = _MISSING
    ne: Any = _MISSING
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_op(self) -> AttrCond:
        used = [op for op in _OPS if self._op_value(op) is not _MISSING]
        if len(used) != 1:
            raise ValueError(f"attr condition needs exactly one of {', '.join(_OPS)}")
        return self

    def _op_value(self, op: str) -> Any:
        value = getattr(self, "in_" if op == "in" else op)
        if op in ("eq", "ne"):
            return value
        return _MISSING if value is None else value

    def op(self) -> tuple[str, Any]:
        for name in _OPS:
            value = self._op_value(name)
            if value is not _MISSING:
                return name, value
        raise AssertionError("validated to have one op")


class AllCond(_Cond):
    all: list[Condition]


class AnyCond(_Cond):
    any: list[Condition]


class NotCond(_Cond):
    not_: Condition = Field(alias="not")


class RelatedCond(_Cond):
    related: Literal[RELATIONS]  # type: ignore[valid-type]
    where: Condition | None = None
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @property
    def low(self) -> int:
        """At least one match by default; `max` alone (e.g. `max: 0`) means "at most"."""
        if self.min is not None:
            return self.min
        return 0 if self.max is not None else 1


Condition = AttrCond | AllCond | AnyCond | NotCond | RelatedCond
for _model in (AllCond, AnyCond, NotCond, RelatedCond):
    _model.model_rebuild()


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    return value


def _derived(graph: SystemGraph, node: Node, name: str) -> Any:
    if node.kind == "element":
        if name == "trust":
            return graph.trust(node.id).value
        if name == "trust_rank":
            return graph.trust(node.id).rank
        if name == "exposed":
            if getattr(node.obj, "public", False) or graph.trust(node.id).rank == 0:
                return True
            return any(graph.trust(i).rank == 0 for i in graph.upstream(node.id))
        if name == "artifact.executes_code":
            art = getattr(node.obj, "artifact", None)
            return bool(art and art.format.executes_code_on_load)
    if node.kind == "flow":
        src, dst = graph.trust(node.obj.source), graph.trust(node.obj.target)
        derived = {
            "from_trust": src.value,
            "to_trust": dst.value,
            "from_trust_rank": src.rank,
            "to_trust_rank": dst.rank,
            "crosses_boundary": [b.id for b in graph.boundary_chain(node.obj.source)]
            != [b.id for b in graph.boundary_chain(node.obj.target)],
        }
        if name in derived:
            return derived[name]
    if name == "type":
        return node.type
    return _MISSING


def lookup(graph: SystemGraph, node: Node, path: str) -> Any:
    """Resolve a dotted attribute path on a node; None when absent."""
    value = _derived(graph, node, path)
    if value is not _MISSING:
        return _plain(value)
    cur: Any = node.obj
    for part in path.split("."):
        if cur is None:
            return None
        cur = getattr(cur, part, None)
    return _plain(cur)


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "exists":
        present = actual is not None and actual != [] and actual != ""
        return present is bool(expected)
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if op == "in":
        return actual in expected
    if op == "not_in":
        return actual not in expected
    if actual is None or isinstance(actual, bool) or not isinstance(actual, int | float):
        return False
    results: dict[str, bool] = {
        "gt": actual > expected,
        "gte": actual >= expected,
        "lt": actual < expected,
        "lte": actual <= expected,
    }
    return results[op]


def evaluate(cond: Condition, graph: SystemGraph, node: Node) -> tuple[bool, Facts]:
    if isinstance(cond, AttrCond):
        op, expected = cond.op()
        actual = lookup(graph, node, cond.attr)
        return _compare(op, actual, expected), {cond.attr: actual}
    if isinstance(cond, AllCond):
        facts: Facts = {}
        for sub in cond.all:
            ok, sub_facts = evaluate(sub, graph, node)
            facts.update(sub_facts)
            if not ok:
                return False, facts
        return True, facts
    if isinstance(cond, AnyCond):
        tried: Facts = {}
        for sub in cond.any:
            ok, sub_facts = evaluate(sub, graph, node)
            if ok:
                return True, sub_facts
            tried.update(sub_facts)
        return False, tried
    if isinstance(cond, NotCond):
        ok, sub_facts = evaluate(cond.not_, graph, node)
        return not ok, sub_facts
    return _evaluate_related(cond, graph, node)


def _evaluate_related(cond: RelatedCond, graph: SystemGraph, node: Node) -> tuple[bool, Facts]:
    matched: list[str] = []
    facts: Facts = {}
    for other in graph.related(node, cond.related):
        if cond.where is None:
            matched.append(other.id)
            continue
        ok, sub_facts = evaluate(cond.where, graph, other)
        if ok:
            matched.append(other.id)
            for key, value in sub_facts.items():
                facts.setdefault(f"{cond.related}.{key}", value)
    ok = len(matched) >= cond.low and (cond.max is None or len(matched) <= cond.max)
    facts[cond.related] = matched
    return ok, facts
