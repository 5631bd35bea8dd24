"""Approximate candidate search for a large global history (faiss HNSW, an optional extra).

The exact two-stage search of `history.Ring` reads a small block per entry on
every query: a few tens of microseconds at the default 10,000 entries, but
linear in the history, so a deployment that keeps a million queries across
principals (to link an attacker's accounts over days) would spend milliseconds
per query. An HNSW graph finds the entries near a query in roughly
logarithmic time instead.

A ring overwrites its oldest entry, and an HNSW graph cannot delete one. So the
history is covered by *generations*: each graph holds a fixed run of
consecutive entries, a new one is started when the current one is full, and the
oldest is dropped once every entry it holds has been overwritten in the ring.
A query asks every live graph for candidates, and the ring measures them
exactly (the radius, the distinct-input count and the lineage rules are
unchanged), so what approximation can cost is a missed neighbour, never a
false one. `benchmarks/global_index.py` measures that recall and the
cost against the exact search.

A graph holds each distinct input once, with the entries that sent it: a
global history is mostly catalogue items re-sent by many users, and faiss's
range search over HNSW stops short among many equal points (of 301 copies of
one input it returned 45-75, with efSearch 16-128), so with every copy in the
graph it found 52 % of the true neighbours at 100,000 entries of digits32
traffic.
"""

from __future__ import annotations

from collections import deque
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.detect.history import input_key
from bastion.errors import ConfigError

__all__ = ["Graphs"]

_GENERATIONS = 2  # graphs covering the ring: a dropped one frees half of it
_BATCH = 128  # new inputs added to a graph at once; those not yet added are scanned
_SLACK = 1.05  # search a little past the radius: graph distances are float32 sums too


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise ConfigError(
            "global_index 'hnsw' needs faiss",
            hint="pip install 'bastion[ann]' (faiss-cpu), or use global_index 'exact'",
        ) from None
    # one query at a time, inline in a request: threads only add hand-over cost
    faiss.omp_set_num_threads(1)
    return faiss


class _Generation:
    """One graph: the distinct inputs of a run of consecutive entries, and for each the
    entries (their sequence numbers) that sent it."""

    def __init__(self, first: int, graph: Any, dim: int, batch: int) -> None:
        self.first, self.graph = first, graph
        self.members: list[list[int]] = []  # graph id -> sequence numbers
        self.ids: dict[int, int] = {}  # hash of the input's bytes -> graph id
        self.waiting = np.zeros((batch, dim), dtype=np.float32)  # new inputs, not yet added
        self.n_waiting = 0

    def flush(self) -> None:
        if self.n_waiting:
            self.graph.add(np.ascontiguousarray(self.waiting[: self.n_waiting]))
            self.n_waiting = 0


class Graphs:
    """HNSW graphs over the consecutive entries of a ring of `capacity` slots; entry number
    `seq` (counted from the first ever added) lives in slot `seq % capacity`.

    New inputs join a graph `_BATCH` at a time: faiss sets up a visited-set as large as the
    graph for every call, so adding one input per call cost 160–760 µs at 100,000 entries,
    against 33–52 µs each in calls of 64. Until then they are scanned exactly."""

    def __init__(
        self, capacity: int, dim: int, m: int = 12, ef_construction: int = 32, ef_search: int = 64
    ) -> None:
        self._faiss = _faiss()
        self.capacity, self.dim, self.m = capacity, dim, m
        self.ef_construction, self.ef_search = ef_construction, ef_search
        self.per = max(1, -(-capacity // _GENERATIONS))  # entries per graph
        self.batch = min(_BATCH, self.per)
        self.gens: deque[_Generation] = deque()  # oldest first
        self.added = 0  # entries ever added

    def _generation(self, first: int) -> _Generation:
        g = self._faiss.IndexHNSWFlat(self.dim, self.m)
        g.hnsw.efConstruction = self.ef_construction
        g.hnsw.efSearch = self.ef_search
        return _Generation(first, g, self.dim, self.batch)

    def add(self, v: npt.NDArray[np.float32]) -> None:
        """Index the ring's next entry (the one `Ring.add` just wrote)."""
        seq = self.added
        if not self.gens or seq - self.gens[-1].first >= self.per:
            if self.gens:
                self.gens[-1].flush()
            self.gens.append(self._generation(seq))
        gen = self.gens[-1]
        key = input_key(v)
        known = gen.ids.get(key)
        if known is not None:
            gen.members[known].append(seq)
        else:
            gen.ids[key] = len(gen.members)
            gen.members.append([seq])
            gen.waiting[gen.n_waiting] = v
            gen.n_waiting += 1
            if gen.n_waiting == self.batch:
                gen.flush()
        self.added = seq + 1
        # the oldest graph goes once the ring has overwritten all it holds
        while len(self.gens) > 1 and self.gens[1].first <= self.added - self.capacity:
            self.gens.popleft()

    def candidates(self, v: npt.NDArray[np.float32], r2: float, size: int) -> npt.NDArray[np.intp]:
        """Slots of the entries whose input the graphs place within squared distance `r2` of
        `v` (or, not yet in a graph, is), among the `size` the ring still holds; sorted, as
        the exact search returns them."""
        q = np.ascontiguousarray(v.reshape(1, -1), dtype=np.float32)
        reach = float(r2) * _SLACK
        found: list[int] = []
        for gen in self.gens:
            ids: list[int] = []
            if gen.graph.ntotal:
                _, _, got = gen.graph.range_search(q, reach)
                ids = got.tolist()
            if gen.n_waiting:
                d2 = np.square(gen.waiting[: gen.n_waiting] - v).sum(1)
                base = int(gen.graph.ntotal)
                ids += (np.flatnonzero(d2 <= reach) + base).tolist()
            found.extend(chain.from_iterable(gen.members[i] for i in ids))
        if not found:
            return np.empty(0, dtype=np.intp)
        seq = np.asarray(found, dtype=np.int64)
        seq = seq[seq >= self.added - size]
        return np.sort(seq % self.capacity).astype(np.intp)

    @property
    def nbytes(self) -> int:
        """An estimate (faiss does not report its graphs' size): per distinct input its
        vector, about 2·m links on the base layer and a few more above, and a dictionary
        slot; per entry a list slot and an integer."""
        inputs = sum(len(g.members) for g in self.gens)
        entries = sum(len(m) for g in self.gens for m in g.members)
        waiting = sum(g.waiting.nbytes for g in self.gens)
        return inputs * (4 * self.dim + 10 * self.m + 100) + entries * 36 + waiting
