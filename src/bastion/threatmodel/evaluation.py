"""What threat conditions mean over a system graph.

Evaluation returns the facts it looked at (attribute values, matching ids), so
every threat finding carries the manifest evidence that triggered it.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel

from bastion.catalogue.conditions import (
    UNSET,
    AllCond,
    AnyCond,
    AttrCond,
    Condition,
    NotCond,
    RelatedCond,
)
from bastion.threatmodel.graph import Node, SystemGraph

__all__ = ["Facts", "evaluate", "lookup"]

Facts = dict[str, Any]


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
    return UNSET


def lookup(graph: SystemGraph, node: Node, path: str) -> Any:
    """Resolve a dotted attribute path on a node; None when absent."""
    value = _derived(graph, node, path)
    if value is not UNSET:
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
