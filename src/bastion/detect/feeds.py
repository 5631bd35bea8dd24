"""Feeds: how detectors on several guard replicas share one history through the store.

Every entry a detector remembers is also appended to a log in the guard's
store (capped at the ring's size), and before each judgement the detector
pulls what other replicas appended since its cursor. Every replica thus
searches the union of all replicas' queries, a restarted guard rebuilds its
rings from the logs, and the cost is one store round trip to pull and one to
push, whatever the number of logs a query touches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bastion.detect.history import Entry
from bastion.guard.stores.base import LogAppend, LogRead, Store

__all__ = ["LOG_TTL_S", "Feed", "pull", "pull_raw", "push", "push_raw"]

LOG_TTL_S = 7 * 24 * 3600.0  # a log nobody appended to for this long is dropped (Redis)


@dataclass
class Feed:
    """One shared log a detector follows: its key, its bound, and how far it has read.

    A fresh feed (`warm` false) reads the whole log, its own origin's entries
    included (after a restart or after forgetting a principal, they are not in
    memory any more); afterwards only other origins' entries come back.
    """

    key: str
    capacity: int
    cursor: int = 0
    warm: bool = False


def pull_raw(store: Store, origin: str, feeds: Sequence[Feed]) -> list[list[bytes]]:
    """What other replicas appended to each feed since its cursor, in one store call."""
    reads = [LogRead(f.key, f.cursor, f.capacity, own=not f.warm) for f in feeds]
    out = []
    for f, got in zip(feeds, store.read_logs(origin, reads), strict=True):
        f.cursor, f.warm = got.cursor, True
        out.append(got.items)
    return out


def push_raw(
    store: Store,
    origin: str,
    feeds: Sequence[Feed],
    items: Sequence[bytes],
    ttl_s: float | None = None,
) -> None:
    """Append the same encoded entries to every feed's log, in one store call."""
    if items:
        ttl = ttl_s or LOG_TTL_S
        store.append_logs(origin, [LogAppend(f.key, items, f.capacity, ttl) for f in feeds])


def pull(store: Store, origin: str, feeds: Sequence[Feed]) -> list[list[Entry]]:
    """`pull_raw`, decoded as history entries."""
    return [[Entry.from_bytes(r) for r in got] for got in pull_raw(store, origin, feeds)]


def push(
    store: Store,
    origin: str,
    feeds: Sequence[Feed],
    entries: Sequence[Entry],
    ttl_s: float | None = None,
) -> None:
    """`push_raw` for history entries."""
    push_raw(store, origin, feeds, [e.to_bytes() for e in entries], ttl_s)
