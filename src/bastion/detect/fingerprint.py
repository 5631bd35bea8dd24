"""Content fingerprints for images (Blacklight-style): salted quantisation, windowed hashes,
top-k selection and an inverted index, per principal and across principals.

Pixels are quantised on a grid shifted by a secret per-pixel salt (so an
attacker cannot aim for grid boundaries), every run of `window` consecutive
quantised values becomes one 60-bit key, the `top_k` largest salted keys are
the fingerprint, and an inverted index from key to remembered query finds
every earlier query sharing at least `match` keys. Two queries that differ in
a few pixels share most keys; two different images share almost none. As in
the similarity detector, matches are weighed over a campaign window, not
reported query by query.

With a configured `salt` (the same on every replica), fingerprints are shared
through the store's logs like the similarity detector's histories: each
replica pulls the fingerprints the others remembered before judging. With a
random salt each process fingerprints differently, so nothing is shared.
"""

from __future__ import annotations

import hashlib
import struct
import threading
import uuid
from collections import Counter, OrderedDict
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from bastion.detect.feeds import Feed, pull_raw, push_raw
from bastion.detect.history import owner_id
from bastion.detect.provenance import Campaign
from bastion.guard.policies.detection import Evidence, Observation
from bastion.guard.stores.base import Store

__all__ = ["FingerprintDetector", "FingerprintOptions", "HashIndex"]

_MIX = np.uint64(0x9E3779B97F4A7C15)
_HEAD = struct.Struct("<qQ?f")  # owner, digest, suspect, score; then the keys (uint64)


class FingerprintOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    salt: str = Field(default="", description="secret; a random one is drawn when empty")
    step: float = Field(default=50 / 255, gt=0, description="quantisation step (input units)")
    scale: float = Field(default=1.0, gt=0, description="input units per full pixel range")
    window: int = Field(default=20, ge=2, le=20)
    top_k: int = Field(default=50, ge=4)
    match: int = Field(default=25, ge=1, description="shared keys that make two queries alike")
    common: int = Field(default=64, ge=1, description="ignore keys more queries than this share")
    history: int = Field(default=10_000, ge=16)
    global_history: int = Field(default=10_000, ge=16)
    campaign_window: int = Field(default=12, ge=2)
    trigger: float = Field(default=2.4, gt=0)
    persist: bool = Field(default=True, description="share via the store (needs a set salt)")


class HashIndex:
    """Bounded inverted index: key → slots; overwriting a slot removes its keys."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.keys: list[npt.NDArray[np.uint64] | None] = [None] * capacity
        self.owner = np.zeros(capacity, dtype=np.int64)
        self.suspect = np.zeros(capacity, dtype=np.bool_)
        self.digest = np.zeros(capacity, dtype=np.uint64)
        self.index: dict[int, set[int]] = {}
        self.cursor = 0

    def matches(self, keys: npt.NDArray[np.uint64], need: int, common: int) -> dict[int, int]:
        """Slots sharing at least `need` keys; keys held by more than `common` slots (blank
        backgrounds, borders) say nothing about provenance and are skipped."""
        get, held = self.index.get, list[int]()
        for k in keys.tolist():
            bucket = get(k)
            if bucket and len(bucket) <= common:
                held.extend(bucket)
        if len(held) < need:
            return {}
        return {s: c for s, c in Counter(held).items() if c >= need}  # (counted in C)

    def add(self, keys: npt.NDArray[np.uint64], owner: int, digest: int, suspect: bool) -> None:
        slot = self.cursor
        old = self.keys[slot]
        if old is not None:
            for k in old.tolist():
                bucket = self.index.get(k)
                if bucket is not None:
                    bucket.discard(slot)
                    if not bucket:
                        del self.index[k]
        self.keys[slot] = keys
        self.owner[slot], self.digest[slot], self.suspect[slot] = owner, digest, suspect
        for k in keys.tolist():
            self.index.setdefault(k, set()).add(slot)
        self.cursor = (slot + 1) % self.capacity


class FingerprintDetector:
    """Registry name `fingerprint`; implements the guard's `Detector` protocol (images)."""

    name = "fingerprint"
    Options: ClassVar[type[BaseModel]] = FingerprintOptions

    def __init__(self, options: FingerprintOptions, env: Any = None) -> None:
        self.opts = options
        self.salt_text = options.salt or np.random.default_rng().bytes(16).hex()
        self._salts: dict[int, npt.NDArray[np.float32]] = {}
        seed = int.from_bytes(hashlib.sha256(self.salt_text.encode()).digest()[:8], "little")
        self._key_salt = np.uint64(seed | 1)
        self.indexes: OrderedDict[str, HashIndex] = OrderedDict()
        self.campaigns: dict[str, Campaign] = {}
        self.global_index = HashIndex(options.global_history)
        self.feeds: dict[str, Feed] = {}
        self.global_feed = Feed(f"{self.name}:global", options.global_history)
        self.origin = uuid.uuid4().hex[:16]  # this replica, in the shared logs
        self._lock = threading.Lock()  # pull, judge, push: one step per process
        self.shared = options.persist and bool(options.salt)  # a random salt is per process

    def _salt(self, n: int) -> npt.NDArray[np.float32]:
        s = self._salts.get(n)
        if s is None:
            seed = hashlib.sha256(f"{self.salt_text}:{n}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))
            s = (rng.random(n) * self.opts.step * self.opts.scale).astype(np.float32)
            self._salts[n] = s
        return s

    def fingerprint(self, row: npt.NDArray[Any]) -> tuple[npt.NDArray[np.uint64], int]:
        """Top-k salted window keys of one input, and a digest of its whole quantisation."""
        flat = np.asarray(row, dtype=np.float32).reshape(-1)
        cell = ((flat + self._salt(flat.size)) / (self.opts.step * self.opts.scale)).astype(
            np.int64
        )
        q = np.clip(cell, 0, 7).astype(np.uint64)  # 3 bits per value: a 20-window fits 60 bits
        key = _windows(q, min(self.opts.window, flat.size))
        mixed = (key ^ self._key_salt) * _MIX
        mixed ^= mixed >> np.uint64(29)
        top = _largest_distinct(mixed, self.opts.top_k)
        digest = int(np.bitwise_xor.reduce(mixed * np.uint64(3))) if mixed.size else 0
        return top, digest

    def memory_bytes(self) -> int:
        """Approximate bytes per principal: `top_k` keys per remembered query, each held in
        the key array and in one inverted-index set (~100 bytes of Python objects)."""
        return self.opts.history * (self.opts.top_k * (8 + 100) + 40)

    def _index(self, principal: str) -> HashIndex:
        idx = self.indexes.get(principal)
        if idx is None:
            idx = HashIndex(self.opts.history)
            self.indexes[principal] = idx
            self.feeds[principal] = Feed(f"{self.name}:p:{principal}", self.opts.history)
            while len(self.indexes) > 10_000:
                old, _ = self.indexes.popitem(last=False)
                self.campaigns.pop(old, None)
                self.feeds.pop(old, None)
        else:
            self.indexes.move_to_end(principal)
        return idx

    def _sync(self, principal: str, own: HashIndex, camp: Campaign, store: Store) -> list[Feed]:
        """Take in the fingerprints other replicas remembered since the last query."""
        feeds = [self.feeds[principal], self.global_feed]
        mine, everyone = pull_raw(store, self.origin, feeds)
        for raw in mine:
            keys, owner, digest, suspect, score = _decode(raw)
            own.add(keys, owner, digest, suspect)
            camp.absorb(score, suspect)
        for raw in everyone:
            keys, owner, digest, suspect, _ = _decode(raw)
            self.global_index.add(keys, owner, digest, suspect)
        return feeds

    def observe(self, obs: Observation, store: Store) -> Evidence | None:
        # threads of one process (the in-process wrapper) would otherwise pull the same
        # entries twice or interleave their updates of one ring
        with self._lock:
            return self._observe(obs, store)

    def _observe(self, obs: Observation, store: Store) -> Evidence | None:
        x = np.asarray(next(iter(obs.inputs.values())))
        rows = x.reshape(x.shape[0] if x.ndim > 1 else 1, -1)
        own = self._index(obs.principal)
        camp = self.campaigns.setdefault(
            obs.principal, Campaign(self.opts.campaign_window, self.opts.trigger)
        )
        feeds = self._sync(obs.principal, own, camp, store) if self.shared else []
        me = owner_id(obs.principal)
        released, kinds = 0.0, set[str]()
        remembered = []
        for row in rows:
            keys, digest = self.fingerprint(row)
            hits = own.matches(keys, self.opts.match, self.opts.common)
            distinct = [s for s in hits if own.digest[s] != digest]
            score = 0.0
            if distinct:
                score += 0.35
                kinds.add("near_duplicate")
                if len(distinct) >= 5:
                    score += 0.35
                    kinds.add("crowding")
            ghits = self.global_index.matches(keys, self.opts.match, self.opts.common)
            if any(
                self.global_index.owner[s] != me
                and self.global_index.suspect[s]
                and self.global_index.digest[s] != digest
                for s in ghits
            ):
                score += 0.5
                kinds.add("cross_principal")
            released += camp.add(score)
            own.add(keys, me, digest, camp.active)
            self.global_index.add(keys, me, digest, camp.active)
            remembered.append(_HEAD.pack(me, digest, camp.active, score) + keys.tobytes())
        if self.shared:
            push_raw(store, self.origin, feeds, remembered)
        if released <= 0:
            return None
        return Evidence(released, "+".join(sorted(kinds)) or "near_duplicate")


def _decode(raw: bytes) -> tuple[npt.NDArray[np.uint64], int, int, bool, float]:
    owner, digest, suspect, score = _HEAD.unpack_from(raw)
    keys = np.frombuffer(raw[_HEAD.size :], dtype=np.uint64).copy()
    return keys, owner, digest, bool(suspect), score


def _windows(q: npt.NDArray[np.uint64], w: int) -> npt.NDArray[np.uint64]:
    """Every run of `w` consecutive 3-bit values packed into one key (value j of the run at
    bits 3j): runs of 1, 2, 4, 8, 16 values are built by doubling, and a run of `w` joins
    a few of them (five array operations for a 20-run instead of twenty)."""
    n = q.size - w + 1
    runs = {1: q}
    size = 1
    while size * 2 <= w:
        r = runs[size]
        runs[size * 2] = r[: r.size - size] | (r[size:] << np.uint64(3 * size))
        size *= 2
    key = runs[size][:n].copy()
    done = size
    for part in sorted(runs, reverse=True):  # the remainder, largest runs first
        if done + part <= w:
            key |= runs[part][done : done + n] << np.uint64(3 * done)
            done += part
    return key


def _largest_distinct(v: npt.NDArray[np.uint64], k: int) -> npt.NDArray[np.uint64]:
    """The `k` largest distinct values, ascending. A partition keeps the largest 2k first:
    if they hold k distinct values those are the answer, and sorting 2k values instead of
    the whole array (np.unique sorts all ~3,000 window keys of an image) is 15× cheaper."""
    if v.size > 2 * k:
        top = np.unique(np.partition(v, v.size - 2 * k)[-2 * k :])
        if top.size >= k:
            return top[-k:]
    return np.unique(v)[-k:]
