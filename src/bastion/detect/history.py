"""Bounded query histories: a numpy ring buffer searched exactly, persisted through the store.

The search runs over an in-process array so one query costs a single
matrix-vector product, whatever the store. Entries travel between guard
replicas (and survive restarts) as bytes in the store's logs; see `feeds`.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Entry", "Neighbours", "Ring", "owner_id"]

_HEAD = struct.Struct("<dqiiffB")  # time, owner, label, depth, step, score, suspect


@dataclass(frozen=True)
class Entry:
    """One remembered query: its feature vector and what provenance knows about it."""

    vector: npt.NDArray[np.float32]
    time: float
    owner: int
    label: int
    depth: int
    step: float
    suspect: bool = False  # its principal was already under suspicion when it was sent
    score: float = 0.0  # what it added to its principal's campaign window

    def to_bytes(self) -> bytes:
        head = _HEAD.pack(
            self.time, self.owner, self.label, self.depth, self.step, self.score, self.suspect
        )
        # float32, not float16: a replica pulling this entry must measure the same distances
        # as the replica that wrote it (float16 rounding is as large as the radius·1e-3 that
        # tells a verbatim repeat from a new query)
        return head + self.vector.astype(np.float32).tobytes()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Entry:
        t, owner, label, depth, step, score, suspect = _HEAD.unpack_from(raw)
        vec = np.frombuffer(raw[_HEAD.size :], dtype=np.float32).copy()
        return cls(vec, t, owner, label, depth, step, bool(suspect), score)


@dataclass(frozen=True)
class Neighbours:
    """The `k` nearest earlier entries within the radius (closest first) of one query."""

    dist: npt.NDArray[np.float32]
    label: npt.NDArray[np.int32]
    depth: npt.NDArray[np.int32]
    step: npt.NDArray[np.float32]
    owner: npt.NDArray[np.int64]
    suspect: npt.NDArray[np.bool_]
    within: int  # how many entries in total lie within the radius asked for


class Ring:
    """Fixed-capacity history; the oldest entry is overwritten, entries older than `ttl_s`
    are ignored. Memory: capacity × (4·dim + 29) bytes."""

    def __init__(self, capacity: int, dim: int, ttl_s: float | None = None) -> None:
        self.capacity = capacity
        self.ttl_s = ttl_s
        self.vec = np.zeros((capacity, dim), dtype=np.float32)
        self.sq = np.zeros(capacity, dtype=np.float32)
        self.time = np.full(capacity, -np.inf)
        self.owner = np.zeros(capacity, dtype=np.int64)
        self.label = np.zeros(capacity, dtype=np.int32)
        self.depth = np.zeros(capacity, dtype=np.int32)
        self.step = np.zeros(capacity, dtype=np.float32)
        self.suspect = np.zeros(capacity, dtype=np.bool_)
        self.size = 0
        self.cursor = 0

    @property
    def nbytes(self) -> int:
        arrays: tuple[npt.NDArray[Any], ...] = (self.vec, self.sq, self.time, self.owner)
        arrays += (self.label, self.depth, self.step, self.suspect)
        return sum(a.nbytes for a in arrays)

    def add(self, e: Entry) -> None:
        i = self.cursor
        self.vec[i] = e.vector
        self.sq[i] = float(e.vector @ e.vector)
        self.time[i], self.owner[i], self.label[i] = e.time, e.owner, e.label
        self.depth[i], self.step[i], self.suspect[i] = e.depth, e.step, e.suspect
        self.cursor = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def nearest(self, v: npt.NDArray[np.float32], k: int, radius: float, now: float) -> Neighbours:
        """Up to `k` entries within `radius`, closest first; `within` counts all distinct ones
        (identical repeats are not counted, so retries do not look like a crowd)."""
        n = self.size
        if n == 0:
            return _EMPTY
        d2 = self.sq[:n] - 2.0 * (self.vec[:n] @ v) + float(v @ v)
        r2 = radius * radius
        hit = np.flatnonzero(d2 <= r2)
        if self.ttl_s is not None and hit.size:
            hit = hit[self.time[hit] >= now - self.ttl_s]
        if hit.size == 0:
            return _EMPTY
        d = d2[hit]
        within = int(np.count_nonzero(d > r2 * 1e-6))
        if hit.size > k:
            part = np.argpartition(d, k - 1)[:k]
            hit, d = hit[part], d[part]
        order = np.argsort(d)
        idx = hit[order]
        dist = np.sqrt(np.maximum(d[order], 0.0)).astype(np.float32)
        return Neighbours(
            dist,
            self.label[idx],
            self.depth[idx],
            self.step[idx],
            self.owner[idx],
            self.suspect[idx],
            within,
        )

    def values(self) -> npt.NDArray[np.float32]:
        return self.vec[: self.size]


_EMPTY = Neighbours(
    np.zeros(0, np.float32),
    np.zeros(0, np.int32),
    np.zeros(0, np.int32),
    np.zeros(0, np.float32),
    np.zeros(0, np.int64),
    np.zeros(0, np.bool_),
    0,
)


def owner_id(principal: str) -> int:
    """A stable 63-bit id for a principal, so global entries stay small."""
    digest = hashlib.blake2b(principal.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
