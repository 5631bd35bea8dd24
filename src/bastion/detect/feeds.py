"""Feeds: how detectors on several guard replicas share one history through the store.

Every entry a detector remembers is also appended to a log in the guard's
store (capped at the ring's size), and before each judgement the detector
pulls what other replicas appended since its cursor. Every replica thus
searches the union of all replicas' queries, a restarted guard rebuilds its
rings from the logs, and the cost is one store round trip to pull and one to
push, whatever the number of logs a query touches — or a single one, when the
entries to push do not depend on what the pull brings (`then_push`).
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


def pull_raw(
    store: Store,
    origin: str,
    feeds: Sequence[Feed],
    then_push: Sequence[bytes] = (),
    ttl_s: float | None = None,
) -> list[list[bytes]]:
    """What other replicas appended to each feed since its cursor, in one store call; entries
    that do not depend on what is pulled can be pushed to every feed in the same call."""
    reads = [LogRead(f.key, f.cursor, f.capacity, own=not f.warm) for f in feeds]
    appends = _appends(feeds, then_push, ttl_s)
    out = []
    for f, got in zip(feeds, store.read_logs(origin, reads, appends), strict=True):
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
        store.append_logs(origin, _appends(feeds, items, ttl_s))


def _appends(feeds: Sequence[Feed], items: Sequence[bytes], ttl_s: float | None) -> list[LogAppend]:
    if not items:
        return []
    return [LogAppend(f.key, items, f.capacity, ttl_s or LOG_TTL_S) for f in feeds]


def pull(
    store: Store,
    origin: str,
    feeds: Sequence[Feed],
    then_push: Sequence[Entry] = (),
    ttl_s: float | None = None,
) -> list[list[Entry]]:
    """`pull_raw`, decoded as history entries."""
    raw = [e.to_bytes() for e in then_push]
    got = pull_raw(store, origin, feeds, raw, ttl_s)
    return [[Entry.from_bytes(r) for r in items] for items in got]


def push(
    store: Store,
    origin: str,
    feeds: Sequence[Feed],
    entries: Sequence[Entry],
    ttl_s: float | None = None,
) -> None:
    """`push_raw` for history entries."""
    push_raw(store, origin, feeds, [e.to_bytes() for e in entries], ttl_s)
