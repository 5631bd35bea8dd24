"""Bounded query histories: a numpy ring buffer searched exactly (or, for a large global
history, through `ann`'s graphs), persisted through the store.

The search runs over an in-process array, whatever the store, in two exact
stages: the first `LEAD` feature columns (the profile's leading principal
components, which carry most of the variance) give a lower bound of every
squared distance from a small, cache-resident block, and only the few entries
whose bound falls inside the radius are measured in full. The lead columns are
kept twice: column-major for the bound (one contiguous block) and, with the
rest, row-major for the candidates (each a contiguous row: gathering a dozen
rows from a column-major block touched a cache line per value, and took as long
as the bound itself). Entries travel between guard replicas (and survive
restarts) as bytes in the store's logs; see `feeds`.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from bastion.detect.ann import Graphs

__all__ = [
    "EMPTY",
    "LEAD",
    "Entry",
    "Neighbours",
    "Recent",
    "Ring",
    "between",
    "input_key",
    "owner_id",
]

LEAD = 8  # leading feature columns searched first (a lower bound of the full distance)
_FIRST = 64  # slots a ring starts with (it doubles as it fills)
_ROUNDING = 2e-6  # bound on float32 rounding of an expanded squared distance, relative to |v|²

_HEAD = struct.Struct("<dqiiffB")  # time, owner, label, depth, step, score, flags
_TAIL = struct.Struct("<qf")  # lineage root, lineage-free part of the score (flag bit 1)
_META = np.dtype(
    [
        ("time", np.float64),
        ("owner", np.int64),
        ("label", np.int32),
        ("depth", np.int32),
        ("step", np.float32),
        ("suspect", np.bool_),
        ("root", np.int64),
        ("known", np.bool_),  # a re-send of a catalogue item
    ]
)


class Entry(NamedTuple):
    """One remembered query: its feature vector and what provenance knows about it."""

    vector: npt.NDArray[np.float32]
    time: float
    owner: int
    label: int
    depth: int
    step: float
    suspect: bool = False  # its principal was already under suspicion when it was sent
    score: float = 0.0  # what it added to its principal's campaign window
    root: int = 0  # the lineage it belongs to (the id of the query that started it)
    free: float = 0.0  # the part of `score` that counts whatever the lineage (off-manifold, swarm)
    repeat: bool = False  # a verbatim re-send of an earlier input (takes no campaign-window slot)
    moved: bool = False  # landed in another principal's campaign swarm (see `sybils`)
    known: bool = False  # a re-send of an input some principal sent before suspicion

    def to_bytes(self) -> bytes:
        flags = int(self.suspect) | 2 | (4 if self.repeat else 0) | (8 if self.moved else 0)
        flags |= 16 if self.known else 0
        e = self
        head = _HEAD.pack(e.time, e.owner, e.label, e.depth, e.step, e.score, flags)
        # float32, not float16: a replica pulling this entry must measure the same distances
        # as the replica that wrote it (float16 rounding is as large as the radius·1e-3 that
        # tells a verbatim repeat from a new query)
        return head + self.vector.astype(np.float32).tobytes() + _TAIL.pack(self.root, self.free)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Entry:
        t, owner, label, depth, step, score, flags = _HEAD.unpack_from(raw)
        end = len(raw) - _TAIL.size if flags & 2 else len(raw)  # entries of older versions
        vec = np.frombuffer(raw[_HEAD.size : end], dtype=np.float32).copy()
        root, free = _TAIL.unpack_from(raw, end) if flags & 2 else (0, 0.0)
        suspect, repeat, moved, known = (bool(flags & b) for b in (1, 4, 8, 16))
        args = (vec, t, owner, label, depth, step, suspect, score, root, free, repeat)
        return cls(*args, moved, known)


class Neighbours(NamedTuple):
    """The `k` nearest earlier entries within the radius (closest first) of one query."""

    dist: npt.NDArray[np.float32]
    label: npt.NDArray[np.int32]
    depth: npt.NDArray[np.int32]
    step: npt.NDArray[np.float32]
    owner: npt.NDArray[np.int64]
    suspect: npt.NDArray[np.bool_]
    root: npt.NDArray[np.int64]
    within: int  # how many distinct inputs in total lie within the radius asked for
    known: npt.NDArray[np.bool_]  # catalogue items (see `Entry.known`)


class Ring:
    """Fixed-capacity history; the oldest entry is overwritten, entries older than `ttl_s`
    are ignored. Its arrays grow with it, doubling from `_FIRST` slots up to the capacity: a
    guard tracks thousands of principals, most of whom send a few dozen queries, and rings
    allocated whole at their first query held 1.7–2.3 MiB each (10,000 principals: 23 GB).
    Memory: at most capacity × (4·(dim + lead) + 50) bytes; `nbytes` is what it holds now."""

    vec: npt.NDArray[np.float32]
    _lead: npt.NDArray[np.float32]
    sq: npt.NDArray[np.float32]
    meta: npt.NDArray[np.void]

    def __init__(
        self, capacity: int, dim: int, ttl_s: float | None = None, index: str = "exact"
    ) -> None:
        self.capacity = capacity
        # "hnsw": candidates from faiss graphs (`ann`), for a history too large to scan
        self.graphs: Graphs | None = None
        if index == "hnsw":
            from bastion.detect.ann import Graphs  # (only then: faiss is an optional extra)

            self.graphs = Graphs(capacity, dim)
        self.ttl_s = ttl_s
        self.dim = dim
        self.lead = min(LEAD, dim)
        self._q = np.ones(self.lead + 1, dtype=np.float32)  # the query side of the bound
        self.suspects = 0  # entries held whose sender was under suspicion
        self.suspect_by: dict[int, int] = {}  # ... per sender
        self.size = 0
        self.cursor = 0
        self._allocate(min(capacity, _FIRST))

    def _allocate(self, slots: int) -> None:
        """(Re)allocate room for `slots` entries, keeping those held (only while not full, so
        every entry keeps its slot)."""
        held = self.size
        vec = np.zeros((slots, self.dim), dtype=np.float32)  # row-major: rows gathered
        # column 0: squared norm of the lead columns; then the lead columns. Column-major, so
        # the block is contiguous per column: one product gives every lower bound
        lead = np.zeros((slots, self.lead + 1), dtype=np.float32, order="F")
        sq = np.zeros(slots, dtype=np.float32)
        # what provenance reads of a neighbour, one record per entry: written in one step, and
        # the neighbours' records gathered in one step
        meta = np.zeros(slots, dtype=_META)
        meta["time"] = -np.inf
        if held:
            vec[:held], lead[:held], sq[:held] = self.vec[:held], self._lead[:held], self.sq[:held]
            meta[:held] = self.meta[:held]
        self.vec, self._lead, self.sq, self.meta = vec, lead, sq, meta
        self._low = np.empty(slots, dtype=np.float32)  # the bounds (no allocation per query)
        self.time, self.owner, self.label = meta["time"], meta["owner"], meta["label"]
        self.depth, self.step, self.suspect, self.root = (
            meta["depth"],
            meta["step"],
            meta["suspect"],
            meta["root"],
        )
        self.known = meta["known"]

    @property
    def nbytes(self) -> int:
        held = self.vec.nbytes + self._lead.nbytes + (self.graphs.nbytes if self.graphs else 0)
        return held + self.sq.nbytes + self.meta.nbytes + self._low.nbytes

    @staticmethod
    def bound(capacity: int, dim: int) -> int:
        """Bytes a ring of `capacity` holds when full."""
        lead = min(LEAD, dim)
        return capacity * (4 * dim + 4 * (lead + 1) + 4 + _META.itemsize + 4)

    def add(self, e: Entry, norms: tuple[float, float] | None = None) -> None:
        """Remember `e`, overwriting the oldest entry when full; `norms` (`norms(e.vector)`)
        saves computing them again when one query goes into several rings."""
        i = self.cursor
        if i == len(self.vec) < self.capacity:  # not full, out of room: grow
            self._allocate(min(2 * i, self.capacity))
        v = e.vector
        self.vec[i] = v
        lead, sq = norms or self.norms(v)
        self._lead[i, 0] = lead
        self._lead[i, 1:] = v[: self.lead]
        self.sq[i] = sq
        if i < self.size and self.suspect[i]:  # a suspect entry is overwritten
            old = int(self.owner[i])
            self.suspects -= 1
            self.suspect_by[old] -= 1
            if not self.suspect_by[old]:
                del self.suspect_by[old]
        if e.suspect:
            self.suspects += 1
            self.suspect_by[e.owner] = self.suspect_by.get(e.owner, 0) + 1
        self.meta[i] = (e.time, e.owner, e.label, e.depth, e.step, e.suspect, e.root, e.known)
        self.cursor = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        if self.graphs is not None:
            self.graphs.add(v)

    def norms(self, v: npt.NDArray[np.float32]) -> tuple[float, float]:
        """Squared norms of `v`'s lead columns and of all of it, as `add` stores them."""
        head, tail = v[: self.lead], v[self.lead :]
        lead = float(np.dot(head, head))
        return lead, lead + float(np.dot(tail, tail))

    def nearest(
        self,
        v: npt.NDArray[np.float32],
        k: int,
        radius: float,
        now: float,
        keep: Callable[[npt.NDArray[np.intp]], npt.NDArray[np.bool_]] | None = None,
        unless: Callable[[npt.NDArray[np.intp]], bool] | None = None,
    ) -> Neighbours:
        """Up to `k` entries within `radius`, closest first; `within` counts the distinct inputs
        among them (an input identical to the query, or re-sent several times, counts at most
        once, so retries do not look like a crowd). `keep`
        narrows the entries considered (given their slots), before the `k` are chosen;
        `unless(slots)` false for the candidates near enough returns no neighbours at all
        (for callers that can use none of them)."""
        n = self.size
        if n == 0:
            return EMPTY
        r2 = radius * radius
        if self.graphs is not None:
            hit = self.graphs.candidates(v, r2, n)
        else:
            q, head = self._q, v[: self.lead]
            np.multiply(head, -2.0, out=q[1:])
            vv_lead = float(np.dot(head, head))
            # |x_lead|² - 2 x_lead·v_lead + |v_lead|² is an exact lower bound of |x - v|²; a
            # little slack for float32 rounding
            # (matmul, not dot: until the ring is full the block's columns are strided, and
            # numpy's dot then leaves BLAS for a loop ten times slower; matmul passes the stride)
            low = np.matmul(self._lead[:n], q, out=self._low[:n])
            hit = (low <= r2 - vv_lead + 1e-4 * (r2 + vv_lead) + 1e-6).nonzero()[0]
        if hit.size and keep is not None:
            hit = hit[keep(hit)]
        if hit.size == 0 or (unless is not None and not unless(hit)):
            return EMPTY
        rows = self.vec[hit]  # (one gather of a dozen contiguous rows)
        d2 = np.dot(rows, v)
        d2 *= -2.0
        d2 += self.sq[hit]
        vv = float(np.dot(v, v))
        d2 += vv
        inside = d2 <= r2
        if self.ttl_s is not None:
            inside &= self.time[hit] >= now - self.ttl_s
        if not inside.all():
            hit, d2, rows = hit[inside], d2[inside], rows[inside]
            if hit.size == 0:
                return EMPTY
        # identical inputs are at exactly the same distance: distinct distances, distinct inputs.
        # |x|² - 2x·v + |v|² in float32 leaves up to ~2.4e-7·|v|² where x = v (measured on
        # both tasks' profiles): an input identical to the query must not count as another.
        # (Inputs whose distances round to one float32 value count once too: re-sends with
        # imperceptible noise, as the weights were calibrated.)
        same = max(r2 * 1e-6, _ROUNDING * vv)
        within = len(set(d2[d2 > same].tolist()))
        # the candidates are measured again from their differences, exactly, and the nearest
        # chosen by those: provenance tells a verbatim repeat (distance 0) from an edit by them
        # (the expanded form left a re-send of an item with |v| ≈ 5 about 0.002 away)
        rows -= v
        d2 = _squared(rows)
        if hit.size > 1:  # closest first; a partition first only when there are many
            if hit.size > 8 * k:
                part = np.argpartition(d2, k - 1)[:k]
                hit, d2 = hit[part], d2[part]
            near = np.argsort(d2)[:k]
            hit, d2 = hit[near], d2[near]
        rec = self.meta[hit]
        return Neighbours(
            np.sqrt(d2),
            rec["label"],
            rec["depth"],
            rec["step"],
            rec["owner"],
            rec["suspect"],
            rec["root"],
            within,
            rec["known"],
        )

    def spread(self, v: npt.NDArray[np.float32], last: int, inner: float, outer: float) -> int:
        """How many distinct inputs among the `last` entries lie farther than `inner` from `v`
        but within `outer`: a swarm of recent queries around one point that are not edits of
        one another (Square's random search on rows) rather than a user's distinct items,
        which are rarely that close."""
        n = min(last, self.size)
        if n == 0:
            return 0
        c = self.cursor
        if c >= n:  # the common case: the last entries are one block, no gather
            vec, sq = self.vec[c - n : c], self.sq[c - n : c]
        else:
            slots = np.r_[self.capacity - (n - c) : self.capacity, 0:c]
            vec, sq = self.vec[slots], self.sq[slots]
        return between(vec, sq, v, inner, outer)

    def values(self) -> npt.NDArray[np.float32]:
        return self.vec[: self.size]


class Recent:
    """A principal's last `n` distinct inputs (re-sends skipped): the campaign window's queries,
    among which a swarm is counted. A bare array, not a `Ring`: it is written on every query."""

    def __init__(self, n: int, dim: int) -> None:
        self.vec = np.zeros((n, dim), dtype=np.float32)
        self.sq = np.zeros(n, dtype=np.float32)
        self.size = self.cursor = 0

    @property
    def nbytes(self) -> int:
        return self.vec.nbytes + self.sq.nbytes

    def add(self, v: npt.NDArray[np.float32]) -> None:
        i = self.cursor
        self.vec[i] = v
        self.sq[i] = float(np.dot(v, v))
        self.cursor = (i + 1) % self.sq.size
        self.size = min(self.size + 1, self.sq.size)

    def spread(self, v: npt.NDArray[np.float32], inner: float, outer: float) -> int:
        """How many of them lie farther than `inner` from `v` but within `outer` (see
        `Ring.spread`; identical inputs are at identical distances and count once)."""
        n = self.size
        return between(self.vec[:n], self.sq[:n], v, inner, outer) if n else 0


EMPTY = Neighbours(
    np.zeros(0, np.float32),
    np.zeros(0, np.int32),
    np.zeros(0, np.int32),
    np.zeros(0, np.float32),
    np.zeros(0, np.int64),
    np.zeros(0, np.bool_),
    np.zeros(0, np.int64),
    0,
    np.zeros(0, np.bool_),
)


def between(
    vec: npt.NDArray[np.float32],
    sq: npt.NDArray[np.float32],
    v: npt.NDArray[np.float32],
    inner: float,
    outer: float,
) -> int:
    """How many distinct rows of `vec` (squared norms `sq`) lie farther than `inner` from `v`
    but within `outer` (the swarm count)."""
    d2 = np.matmul(vec, v)
    d2 *= -2.0
    d2 += sq
    d2 += float(np.dot(v, v))
    # identical inputs are at identical distances (a set of a dozen floats: no numpy unique)
    return len(set(d2[(d2 > inner * inner) & (d2 <= outer * outer)].tolist()))


def _squared(diff: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Row-wise squared norms of a fresh difference array (squared in place)."""
    np.square(diff, out=diff)
    out: npt.NDArray[np.float32] = np.dot(diff, _ones(diff.shape[1]))
    return out


@lru_cache(maxsize=8)
def _ones(dim: int) -> npt.NDArray[np.float32]:
    return np.ones(dim, dtype=np.float32)


def input_key(v: npt.NDArray[np.float32]) -> int:
    """A key for one exact input (its float32 bytes): the same input sent twice, by anyone,
    has the same key."""
    return hash(np.ascontiguousarray(v, dtype=np.float32).tobytes())


@lru_cache(maxsize=65_536)  # hashed on every query, by every detector
def owner_id(principal: str) -> int:
    """A stable 63-bit id for a principal, so global entries stay small."""
    digest = hashlib.blake2b(principal.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
