"""The manifest as a graph: who feeds whom, who trusts whom, what drives which decision.

Threat conditions speak in these derived terms ("a flow from an untrusted
boundary reaches this model", "this model drives a high-impact decision"), so
they are computed once here rather than re-derived by every rule.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bastion.catalogue.conditions import RELATIONS
from bastion.manifest import (
    Boundary,
    ClientApp,
    Decision,
    ElementBase,
    Endpoint,
    Flow,
    Logging,
    ModelRegistry,
    SystemManifest,
    TrainingJob,
    Trust,
)

__all__ = ["RELATIONS", "Node", "SystemGraph"]


@dataclass(frozen=True)
class Node:
    """Something a rule can be about: an element, a flow, or the system itself."""

    kind: str  # "element" | "flow" | "system"
    id: str
    obj: Any

    @property
    def type(self) -> str:
        if self.kind == "element":
            return str(self.obj.type)
        return self.kind


class SystemGraph:
    def __init__(self, manifest: SystemManifest) -> None:
        self.manifest = manifest
        self.elements: dict[str, ElementBase] = {el.id: el for el in manifest.elements}
        self._out: dict[str, list[Flow]] = {i: [] for i in self.elements}
        self._in: dict[str, list[Flow]] = {i: [] for i in self.elements}
        for fl in manifest.flows:
            self._out[fl.source].append(fl)
            self._in[fl.target].append(fl)
        self._boundaries = {b.id: b for b in manifest.boundaries}
        self._trust = {i: self._compute_trust(i) for i in self.elements}

    # -- nodes ------------------------------------------------------------------

    def node(self, element_id: str) -> Node:
        return Node("element", element_id, self.elements[element_id])

    def element_nodes(self) -> list[Node]:
        return [self.node(i) for i in self.elements]

    def flow_nodes(self) -> list[Node]:
        return [Node("flow", fl.key, fl) for fl in self.manifest.flows]

    def system_node(self) -> Node:
        return Node("system", self.manifest.system.name, self.manifest)

    # -- trust ------------------------------------------------------------------

    def boundary_chain(self, element_id: str) -> list[Boundary]:
        """Boundaries containing the element, innermost first."""
        holders = [b for b in self.manifest.boundaries if element_id in b.contains]
        if not holders:
            return []
        innermost = max(holders, key=self._depth)
        chain = [innermost]
        cur = innermost.parent
        while cur is not None and cur in self._boundaries and len(chain) <= len(self._boundaries):
            chain.append(self._boundaries[cur])
            cur = self._boundaries[cur].parent
        return chain

    def _depth(self, b: Boundary) -> int:
        depth, cur = 0, b.parent
        while cur is not None and cur in self._boundaries and depth <= len(self._boundaries):
            depth, cur = depth + 1, self._boundaries[cur].parent
        return depth

    def _compute_trust(self, element_id: str) -> Trust:
        chain = self.boundary_chain(element_id)
        return chain[0].trust if chain else self.manifest.system.default_trust

    def trust(self, element_id: str) -> Trust:
        return self._trust[element_id]

    # -- reachability -----------------------------------------------------------

    def _reach(self, start: str, forward: bool) -> list[str]:
        edges = self._out if forward else self._in
        seen: dict[str, None] = {}
        queue = deque([start])
        while queue:
            cur = queue.popleft()
            for fl in edges[cur]:
                nxt = fl.target if forward else fl.source
                if nxt not in seen and nxt != start:
                    seen[nxt] = None
                    queue.append(nxt)
        return list(seen)

    def upstream(self, element_id: str) -> list[str]:
        return self._reach(element_id, forward=False)

    def downstream(self, element_id: str) -> list[str]:
        return self._reach(element_id, forward=True)

    # -- relations --------------------------------------------------------------

    def related(self, node: Node, relation: str) -> list[Node]:
        ids = self._related_ids(node, relation)
        if relation in ("flows_in", "flows_out"):
            return [Node("flow", fl.key, fl) for fl in ids]
        return [self.node(i) for i in dict.fromkeys(ids) if i in self.elements]

    def _related_ids(self, node: Node, relation: str) -> Iterable[Any]:
        if node.kind == "system":
            return self.elements if relation == "elements" else []
        if node.kind == "flow":
            flow: Flow = node.obj
            return {"source": [flow.source], "target": [flow.target]}.get(relation, [])
        eid = node.id
        simple: dict[str, Callable[[], Iterable[Any]]] = {
            "inputs": lambda: [fl.source for fl in self._in[eid]],
            "outputs": lambda: [fl.target for fl in self._out[eid]],
            "flows_in": lambda: self._in[eid],
            "flows_out": lambda: self._out[eid],
            "upstream": lambda: self.upstream(eid),
            "downstream": lambda: self.downstream(eid),
            "decisions": lambda: self._decisions(eid),
            "models": lambda: self._models(eid),
            "trainers": lambda: self._trainers(eid),
            "training_sources": lambda: self._training_sources(eid),
            "endpoints": lambda: self._endpoints(eid),
            "bundles": lambda: self._of(ClientApp, lambda a: eid in a.ships),
            "monitors": lambda: self._of(Logging, lambda lg: eid in lg.covers),
            "registries": lambda: self._of(ModelRegistry, lambda r: eid in r.stores),
        }
        fn = simple.get(relation)
        return fn() if fn else []

    def _of(self, cls: type[Any], pred: Any) -> list[str]:
        return [el.id for el in self.elements.values() if isinstance(el, cls) and pred(el)]

    def _is(self, element_id: str, type_name: str) -> bool:
        return str(getattr(self.elements[element_id], "type", "")) == type_name

    def _decisions(self, eid: str) -> list[str]:
        declared = self._of(Decision, lambda d: eid in d.driven_by)
        reached = [i for i in self.downstream(eid) if self._is(i, "decision")]
        return declared + reached

    def _models(self, eid: str) -> list[str]:
        el = self.elements[eid]
        out: list[str] = []
        if isinstance(el, Decision):
            out += list(el.driven_by)
        if isinstance(el, Endpoint) and el.model:
            out.append(el.model)
        if isinstance(el, TrainingJob):
            out += list(el.trains)
        if isinstance(el, ClientApp):
            out += list(el.ships)
        if isinstance(el, ModelRegistry):
            out += list(el.stores)
        if isinstance(el, Decision | Endpoint):
            out += [i for i in self.upstream(eid) if self._is(i, "model")]
        return out

    def _trainers(self, eid: str) -> list[str]:
        declared = self._of(TrainingJob, lambda t: eid in t.trains)
        direct = [fl.source for fl in self._in[eid] if self._is(fl.source, "training_job")]
        return declared + direct

    def _training_sources(self, eid: str) -> list[str]:
        """Everything that feeds the training of this model (or of this training job)."""
        jobs = [eid] if self._is(eid, "training_job") else self._trainers(eid)
        out: list[str] = []
        for job in jobs:
            tj = self.elements[job]
            assert isinstance(tj, TrainingJob)
            out += list(tj.datasets)
            for ds in tj.datasets:
                out += self.upstream(ds)
            out += self.upstream(job)
        return [i for i in out if i != eid]

    def _endpoints(self, eid: str) -> list[str]:
        declared = self._of(Endpoint, lambda e: e.model == eid)
        adjacent = [fl.source for fl in self._in[eid] if self._is(fl.source, "endpoint")]
        adjacent += [fl.target for fl in self._out[eid] if self._is(fl.target, "endpoint")]
        return declared + adjacent
