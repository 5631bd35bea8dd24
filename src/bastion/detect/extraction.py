"""Extraction monitoring per principal: how a principal's queries are spread, not what each is.

Three tests, each calibrated on benign traffic:

* PRADA's distance test (Juuti et al. 2019): the distance from each new query
  to the principal's closest earlier query of the same predicted class is, for
  natural traffic, roughly normally distributed; synthetic extraction queries
  (Jacobian augmentation, noise, active learning around a seed set) bend that
  distribution, which a Shapiro–Wilk statistic below `prada_w` shows (a few
  far-out distances, rare catalogue items, are left out of it);
* coverage: the number of distinct benign-fitted cells a principal has visited
  and the entropy of the labels it has been told (relative to all the classes the
  model has answered anyone) — ordinary users ask about a
  few things, an extractor (also a Knockoff-style one using natural data) must
  sweep the whole input space and every class to copy the model;
* off-manifold share: the fraction of queries farther from every benign cell
  than benign queries ever are (noise-like synthetic queries).

All three are computed from a principal's queries in arrival order, so guard
replicas share them by sharing the queries: before judging, each replica pulls
the ones the others answered since its last look (see `feeds.Feed`) and
counts them, and a check falls due on every `check_every`-th query of the
union, whichever replica answers it. Queries are measured (distance to their
predecessors, nearest cell) in one batch when a check falls due, since only
the checks read those measurements.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from bastion.detect.feeds import Feed, pull
from bastion.detect.history import Entry, owner_id
from bastion.detect.normality import shapiro_w
from bastion.detect.profile import Profile
from bastion.detect.similarity import load_profile
from bastion.guard.policies.detection import Evidence, Observation
from bastion.guard.stores.base import Store

__all__ = ["ExtractionDetector", "ExtractionOptions"]

PRADA_SAMPLE = 500  # the newest distances the normality test judges
_SETTLE_AT = 64  # queries taken before they are measured, at the latest
_FIRST = 64  # rows a history starts with (it doubles as it fills)


class ExtractionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str = Field(description="benign profile JSON from `bastion detect fit`")
    history: int = Field(default=2000, ge=16, description="queries remembered per principal")
    min_queries: int = Field(default=30, ge=8, description="no verdict before this many")
    check_every: int = Field(default=5, ge=1)
    prada_w: float = Field(default=0.6, ge=0, lt=1, description="Shapiro-Wilk W alarm level")
    prada_fence: float = Field(
        default=3.0,
        gt=0,
        description="distances beyond Q3 + this × IQR (rare far items) are left out of the test",
    )
    prada_trim: float = Field(
        default=0.05, ge=0, lt=0.5, description="... but at most this share of the sample"
    )
    coverage: float = Field(default=0.6, gt=0, le=1, description="share of cells visited")
    entropy: float = Field(default=0.9, gt=0, le=1, description="label entropy / log(classes)")
    off_manifold: float = Field(default=0.3, gt=0, le=1, description="share far from benign")
    amount: float = Field(default=1.0, gt=0, description="evidence per failed check")
    persist: bool = Field(default=True, description="share histories via the store (replicas)")


class _Points:
    """What PRADA and coverage need of a principal's history: vectors, their squared norms and
    labels, oldest overwritten first. It holds `_SETTLE_AT` entries beyond its `history`, so
    a batch of queries can be written before it is measured without overwriting anything an
    earlier query of the batch still counts as a predecessor. Its arrays grow with it (from
    `_FIRST` rows, doubling): most principals send a few dozen queries. Memory: at most
    (history + `_SETTLE_AT`) × (4·dim + 8) bytes."""

    vec: npt.NDArray[np.float32]
    sq: npt.NDArray[np.float32]
    label: npt.NDArray[np.int32]

    def __init__(self, history: int, dim: int) -> None:
        self.history, self.dim = history, dim
        self.capacity, self.size, self.cursor = history + _SETTLE_AT, 0, 0
        self._allocate(min(self.capacity, _FIRST))

    def _allocate(self, rows: int) -> None:
        vec = np.zeros((rows, self.dim), dtype=np.float32)
        sq = np.zeros(rows, dtype=np.float32)
        label = np.zeros(rows, dtype=np.int32)
        if self.size:  # (only while not full: every entry keeps its slot)
            n = self.size
            vec[:n], sq[:n], label[:n] = self.vec[:n], self.sq[:n], self.label[:n]
        self.vec, self.sq, self.label = vec, sq, label

    @property
    def nbytes(self) -> int:
        return self.vec.nbytes + self.sq.nbytes + self.label.nbytes

    @staticmethod
    def bound(history: int, dim: int) -> int:
        """Bytes held when full."""
        return (history + _SETTLE_AT) * (4 * dim + 8)

    def extend(
        self, vecs: npt.NDArray[np.float32], sq: npt.NDArray[np.float32], labels: npt.NDArray[Any]
    ) -> None:
        """Append in order (at most `_SETTLE_AT` at a time)."""
        m, c = len(vecs), self.cursor
        room = len(self.vec)
        if c + m > room and room < self.capacity:  # not full, out of room: grow
            self._allocate(min(max(2 * room, c + m), self.capacity))
        if c + m <= self.capacity:  # (one block: no index arrays)
            self.vec[c : c + m], self.sq[c : c + m], self.label[c : c + m] = vecs, sq, labels
        else:
            slots = (c + np.arange(m)) % self.capacity
            self.vec[slots], self.sq[slots], self.label[slots] = vecs, sq, labels
        self.cursor = (c + m) % self.capacity
        self.size = min(self.size + m, self.capacity)

    def unseen(self, first: int, m: int) -> list[tuple[int, int, int]]:
        """For each of the last `m` entries written (the `i`-th at slot `first + i`), the
        column ranges of the held slots that are not its predecessors: itself, the batch's
        later entries, and what is older than the `history` entries before it — one cyclic
        run of `_SETTLE_AT` slots from its own, as (row, start, stop) within `size` columns."""
        runs, cap, n = [], self.capacity, self.size
        for i in range(m):
            start = (first + i) % cap
            stop = start + cap - self.history
            runs.append((i, start, min(stop, n)))
            if stop > cap:
                runs.append((i, 0, min(stop - cap, n)))
        return runs


class _Sample:
    """The newest `size` distances PRADA judges, in a numpy ring: a deque of Python floats
    lies scattered through memory, and reading 500 of them back at each check cost more
    than the test itself."""

    def __init__(self, size: int) -> None:
        self.buf = np.zeros(size, dtype=np.float64)
        self.size = self.cursor = 0

    def __len__(self) -> int:
        return self.size

    def extend(self, values: npt.NDArray[Any]) -> None:
        cap = self.buf.size
        values = values[-cap:]
        m, c = values.size, self.cursor
        if c + m <= cap:
            self.buf[c : c + m] = values
        else:
            self.buf[(c + np.arange(m)) % cap] = values
        self.cursor = (c + m) % cap
        self.size = min(self.size + m, cap)

    def held(self) -> npt.NDArray[np.float64]:
        """The distances, in no particular order (the test sorts them)."""
        return self.buf[: self.size]

    def ordered(self) -> npt.NDArray[np.float64]:
        """The distances, oldest first."""
        if self.size < self.buf.size:
            return self.buf[: self.size].copy()
        return np.concatenate([self.buf[self.cursor :], self.buf[: self.cursor]])


class _Principal:
    def __init__(self, history: int, dim: int, cells: int, feed: Feed) -> None:
        self.feed = feed
        self.ring = _Points(history, dim)
        # distances of genuinely new queries to their nearest same-label predecessor: the
        # last PRADA_SAMPLE of them are what the normality test judges
        self.dist = _Sample(PRADA_SAMPLE)
        self.visited = np.zeros(cells, dtype=np.bool_)
        self.labels: dict[int, int] = {}
        self.far = 0
        self.n = 0
        self.pending: list[Entry] = []  # counted, not yet measured (see `_settle`)


class ExtractionDetector:
    """Registry name `extraction`; implements the guard's `Detector` protocol."""

    name = "extraction"
    Options: ClassVar[type[BaseModel]] = ExtractionOptions

    def __init__(
        self, options: ExtractionOptions, env: Any = None, *, profile: Profile | None = None
    ) -> None:
        self.opts = options
        self.profile = profile or load_profile(options.profile, env)
        self.cells = self.profile.cells
        self.cell_sq = (self.cells * self.cells).sum(1).astype(np.float32)
        self._cells_t = np.ascontiguousarray(self.cells.T, dtype=np.float32)
        self.states: OrderedDict[str, _Principal] = OrderedDict()
        # the labels the model has given anyone: the coverage test's "every class"
        self.classes: set[int] = set()
        self.origin = uuid.uuid4().hex[:16]  # this replica, in the shared logs
        self._lock = threading.Lock()  # pull, judge, push: one step per process

    def memory_bytes(self) -> int:
        """Bytes held per principal: its history ring plus the distances PRADA judges."""
        return _Points.bound(self.opts.history, self.profile.dim) + 8 * PRADA_SAMPLE

    def memory_held(self) -> tuple[int, int]:
        """(principals tracked, bytes their histories hold now; see `memory_bytes`)."""
        with self._lock:
            states = list(self.states.values())
        held = sum(st.ring.nbytes + st.dist.buf.nbytes + st.visited.nbytes for st in states)
        return len(states), held

    def _state(self, principal: str) -> _Principal:
        st = self.states.get(principal)
        if st is None:
            feed = Feed(f"{self.name}:p:{principal}", self.opts.history)
            st = _Principal(self.opts.history, self.profile.dim, len(self.cells), feed)
            self.states[principal] = st
            while len(self.states) > 10_000:
                self.states.popitem(last=False)
        else:
            self.states.move_to_end(principal)
        return st

    def _sync(self, st: _Principal, store: Store, mine: list[Entry]) -> None:
        """Take in the principal's queries other replicas answered since the last look, and
        hand over this request's (nothing in them depends on the others): one round trip."""
        for e in pull(store, self.origin, [st.feed], then_push=mine)[0]:
            self._take(st, e)

    def _take(self, st: _Principal, e: Entry) -> None:
        st.pending.append(e)
        st.labels[e.label] = st.labels.get(e.label, 0) + 1
        self.classes.add(e.label)
        st.n += 1
        if len(st.pending) >= _SETTLE_AT:  # queries another replica answered pile up here
            self._settle(st)

    def _settle(self, st: _Principal) -> None:
        """Measure the queries taken since the last check, in arrival order, in one pass over
        the history: the tests need them only at a check, and one product for several queries
        reads the history once instead of once per query (it does not fit in a core's cache
        next to the similarity detector's). The batch is written first; each query's
        predecessors are then the `history` entries before it, its own batch's earlier
        ones included."""
        batch, st.pending = st.pending, []
        if not batch:
            return
        m = len(batch)
        vecs = np.array([e.vector for e in batch], dtype=np.float32)
        labels = np.array([e.label for e in batch], dtype=np.int64)
        vv = np.einsum("ij,ij->i", vecs, vecs)
        ring = st.ring
        first = ring.cursor
        ring.extend(vecs, vv, labels)
        n = ring.size
        twice = vecs * -2.0
        # (squared distance - |query|²) to every held entry, one row per query; then what is
        # not a same-label predecessor is ruled out
        d2 = twice @ ring.vec[:n].T
        d2 += ring.sq[:n]
        np.putmask(d2, ring.label[:n] != labels[:, None], np.inf)
        for i, start, stop in ring.unseen(first, m):
            d2[i, start:stop] = np.inf
        best = d2.min(axis=1)
        best += vv
        dist = np.sqrt(np.maximum(best, 0.0))
        # repeats and near-duplicates are the similarity detector's business; PRADA judges
        # the spread of genuinely new queries (otherwise every retry bends it)
        new = dist > self.profile.radius  # (no same-label predecessor: inf, new too)
        st.dist.extend(dist[np.isfinite(dist) & new])
        c2 = twice @ self._cells_t
        c2 += self.cell_sq
        j = c2.argmin(axis=1)
        st.visited[j] = True
        near2 = c2[np.arange(m), j] + vv
        # off-manifold inputs count once each: a user who re-sends and edits one unusual item
        # is not spraying noise (retries and light edits of it are near-duplicates)
        st.far += int(np.count_nonzero((near2 > self.profile.cell_radius**2) & new))

    def prada_statistic(self, dist: _Sample | Iterable[float]) -> float:
        """W of the principal's new-query distances without a few far-out ones (1 when
        undefined). A natural catalogue has rare items far from everything: each sent adds
        one huge distance, and a single one drags W of an otherwise normal sample from 0.9
        to 0.4. At most `prada_trim` of the sample is left out, so the natural distances
        among an extractor's lump of small synthetic steps (the bend PRADA looks for) stay
        in even when the lump is most of the sample."""
        held = dist.held() if isinstance(dist, _Sample) else np.fromiter(dist, dtype=np.float64)
        d = np.sort(held)
        q1, q3 = _quartile(d, 0.25), _quartile(d, 0.75)
        far = int(np.count_nonzero(d > q3 + self.opts.prada_fence * (q3 - q1)))
        d = d[: d.size - min(far, int(np.ceil(self.opts.prada_trim * d.size)))]
        if d.size < 3 or d[-1] <= d[0]:
            return 1.0
        return shapiro_w(d, presorted=True)

    def verdict(self, st: _Principal) -> list[str]:
        """Which tests the principal fails now (empty while it looks benign)."""
        o = self.opts
        if st.n < o.min_queries:
            return []
        self._settle(st)
        failed = []
        if len(st.dist) >= o.min_queries and self.prada_statistic(st.dist) < o.prada_w:
            failed.append("prada")
        # (a dozen classes at most: plain floats beat numpy's per-call overhead)
        total = sum(st.labels.values())
        spread = sum(c * math.log(c) for c in st.labels.values() if c)
        # relative to every class the model has answered anyone, not only those this principal
        # was told: a user told five of eight classes, unevenly, is not sweeping all of them
        classes = max(len(self.classes), len(st.labels), 2)
        entropy = (math.log(total) - spread / total) / math.log(classes)
        known = len(self.cells)
        cover = float(st.visited.sum()) / min(known, st.n)
        if cover >= o.coverage and entropy >= o.entropy and len(st.labels) >= 3:
            failed.append("coverage")
        if st.far / st.n >= o.off_manifold:
            failed.append("off_manifold")
        return failed

    def observe(self, obs: Observation, store: Store) -> Evidence | None:
        # threads of one process (the in-process wrapper) would otherwise pull the same
        # entries twice or interleave their updates of one ring
        with self._lock:
            return self._observe(obs, store)

    def _observe(self, obs: Observation, store: Store) -> Evidence | None:
        x = next(iter(obs.inputs.values()))
        vecs = self.profile.features(x, obs.memo)
        labels = np.asarray(obs.prediction.labels).reshape(-1)
        st = self._state(obs.principal)
        me = owner_id(obs.principal)
        entries = [
            Entry(v, obs.time, me, int(labels[i]) if i < labels.size else -1, 0, 0.0)
            for i, v in enumerate(vecs)
        ]
        if self.opts.persist:
            self._sync(st, store, entries)
        due = 0
        for e in entries:
            self._take(st, e)
            due += st.n % self.opts.check_every == 0
        if not due:
            return None
        failed = self.verdict(st)
        if not failed:
            return None
        # one unit per failed test and check point passed, so a principal sending rows in
        # batches earns evidence at the same rate per query as one sending them one by one
        return Evidence(
            self.opts.amount * len(failed) * due,
            "+".join(failed),
            {"queries": st.n, "cells": int(st.visited.sum()), "classes": len(st.labels)},
        )


def _quartile(ascending: npt.NDArray[np.float64], q: float) -> float:
    """numpy's default (linear) percentile of an already sorted sample, without its
    generic machinery (a tenth of the check's time)."""
    pos = q * (ascending.size - 1)
    lo = int(pos)
    hi = min(lo + 1, ascending.size - 1)
    return float(ascending[lo] + (ascending[hi] - ascending[lo]) * (pos - lo))
