"""Bounded histories: exact search, eviction, TTL, and persistence through the guard's store."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from bastion.detect.feeds import Feed, pull, push
from bastion.detect.history import Entry, Ring
from bastion.guard.stores.memory import MemoryStore
from bastion.guard.stores.sqlite import SQLiteStore


def test_ring_search_is_exact_and_memory_is_bounded() -> None:
    rng = np.random.default_rng(0)
    ring = Ring(100, 8)
    pts = rng.normal(size=(250, 8)).astype(np.float32)
    for i, p in enumerate(pts):
        ring.add(Entry(p, float(i), 1, i % 3, 0, 0.0))
    assert ring.size == 100  # the oldest 150 were overwritten
    q = pts[-1] + 0.01
    kept = pts[150:]
    d = np.sqrt(((kept - q) ** 2).sum(1))
    nb = ring.nearest(q, 5, radius=3.0, now=300.0)
    np.testing.assert_allclose(nb.dist, np.sort(d[d <= 3.0])[:5], rtol=1e-4, atol=1e-4)
    assert nb.within == int((d <= 3.0).sum())
    assert ring.nearest(pts[0] + 0.01, 5, radius=0.05, now=300.0).dist.size == 0  # evicted


def test_search_matches_brute_force_past_the_lead_columns_full_or_not() -> None:
    """The bound reads the lead columns, the candidates are measured in full: with more
    columns than the lead, a ring part full and wrapped, and more candidates than the
    partition threshold, the k returned are exactly the k nearest."""
    rng = np.random.default_rng(1)
    dim, k = 24, 4
    pts = rng.normal(size=(700, dim)).astype(np.float32)
    for held in (300, 700):  # 300 of 500: not full; 700: full and wrapped
        ring = Ring(500, dim)
        for i, p in enumerate(pts[:held]):
            ring.add(Entry(p, float(i), i, 0, 0, 0.0))
        kept = pts[max(0, held - 500) : held]
        for q in pts[:20] + rng.normal(0, 0.3, size=(20, dim)).astype(np.float32):
            d = np.sqrt(((kept - q) ** 2).sum(1))
            far = np.sort(d)
            radius = float(far[59] + far[60]) / 2  # 60 inside (more than 8·k), none on the edge
            nb = ring.nearest(q, k, radius=radius, now=0.0)
            assert nb.within == 60
            np.testing.assert_allclose(nb.dist, np.sort(d)[:k], rtol=1e-5, atol=1e-5)
            first = int(np.argmin(d)) + max(0, held - 500)  # its owner is its index
            assert int(nb.owner[0]) == first


def test_ttl_forgets_old_queries() -> None:
    ring = Ring(10, 2, ttl_s=60.0)
    ring.add(Entry(np.zeros(2, np.float32), 0.0, 1, 0, 0, 0.0))
    assert ring.nearest(np.zeros(2, np.float32), 1, 1.0, now=30.0).dist.size == 1
    assert ring.nearest(np.zeros(2, np.float32), 1, 1.0, now=90.0).dist.size == 0


def test_entries_persist_through_sqlite_and_rebuild_after_restart(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    ring, feed = Ring(5, 4), Feed("k", 5)
    for i in range(8):
        e = Entry(np.full(4, i, np.float32), float(i), 7, i, i // 2, 0.5, i > 5, 0.25 * i)
        ring.add(e)
        push(store, "first", [feed], [e])
    store.close()
    store = SQLiteStore(tmp_path / "s.db")
    again = Ring(5, 4)
    for e in pull(store, "second", [Feed("k", 5)])[0]:
        again.add(e)
    assert again.size == 5
    assert sorted(again.label[:5].tolist()) == [3, 4, 5, 6, 7]  # the newest five survive
    assert sorted(again.suspect[:5].tolist()) == sorted(ring.suspect[:5].tolist())
    store.close()


def test_a_feed_pulls_only_other_replicas_entries_after_its_first_read() -> None:
    store = MemoryStore()
    mine, theirs = Feed("k", 10), Feed("k", 10)

    def entry(i: int) -> Entry:
        return Entry(np.full(2, i, np.float32), float(i), 1, i, 0, 0.0, False, 0.5)

    push(store, "a", [mine], [entry(0)])
    assert [e.label for e in pull(store, "a", [mine])[0]] == [0]  # cold: own entries too
    push(store, "a", [mine], [entry(1)])
    push(store, "b", [theirs], [entry(2), entry(3)])
    got = pull(store, "a", [mine])[0]
    assert [e.label for e in got] == [2, 3] and got[0].score == 0.5  # warm: others' only
    assert pull(store, "a", [mine]) == [[]]


def test_an_entry_round_trips_through_bytes_exactly() -> None:
    """Replicas measure distances to pulled entries; a lossy encoding would make a verbatim
    repeat sent to another replica look like a new, nearby query."""
    v = np.random.default_rng(1).normal(size=32).astype(np.float32) * 10
    e = Entry(v, 5.5, 123, 2, 4, 0.25, True, 0.55)
    back = Entry.from_bytes(e.to_bytes())
    assert np.array_equal(back.vector, v)
    assert (back.time, back.owner, back.label, back.depth, back.suspect) == (5.5, 123, 2, 4, True)
    assert back.score == np.float32(0.55) and back.step == 0.25


def test_an_entry_keeps_its_lineage_and_entries_of_older_versions_still_decode() -> None:
    v = np.arange(4, dtype=np.float32)
    e = Entry(v, 1.0, 9, 1, 2, 0.5, False, 0.75, root=123456789, free=0.45)
    back = Entry.from_bytes(e.to_bytes())
    assert (back.root, back.free) == (123456789, np.float32(0.45))
    # an entry written before lineages were stored: head, then the vector only
    old = struct.pack("<dqiiffB", 1.0, 9, 1, 2, 0.5, 0.75, 1) + v.tobytes()
    back = Entry.from_bytes(old)
    assert np.array_equal(back.vector, v) and back.suspect and (back.root, back.free) == (0, 0.0)


def test_crowding_counts_distinct_inputs_and_spread_counts_a_recent_swarm() -> None:
    ring = Ring(50, 2)
    item = np.zeros(2, np.float32)
    for _ in range(5):  # one input re-sent five times is one input, not a crowd
        ring.add(Entry(item, 0.0, 1, 0, 0, 0.0))
    ring.add(Entry(np.array([0.1, 0.0], np.float32), 0.0, 1, 0, 0, 0.0))
    assert ring.nearest(np.array([0.0, 0.1], np.float32), 8, 0.5, now=1.0).within == 2
    # a swarm: recent queries around one point, farther apart than edits, closer than items
    swarm = Ring(50, 2)
    for k in range(6):
        a, r = 2 * np.pi * k / 6, 1.0 + 0.05 * k
        swarm.add(Entry(np.array([r * np.cos(a), r * np.sin(a)], np.float32), 0.0, 1, 0, 0, 0.0))
    centre = np.zeros(2, np.float32)
    assert swarm.spread(centre, 12, inner=0.5, outer=1.5) == 6
    assert swarm.spread(centre, 3, inner=0.5, outer=1.5) == 3  # only the last three
    assert swarm.spread(centre, 12, inner=0.5, outer=0.9) == 0
    swarm.add(Entry(swarm.vec[5].copy(), 0.0, 1, 0, 0, 0.0))  # a re-sent input counts once
    assert swarm.spread(centre, 12, inner=0.5, outer=1.5) == 6


def test_a_resent_input_far_from_the_origin_is_at_distance_zero_and_no_crowd() -> None:
    """|x|² - 2x·v + |v|² in float32 left a re-send of a vector with |v| ≈ 20 some 1e-2 away,
    which provenance read as an edit (linked, shrinking) and crowding as another input."""
    rng = np.random.default_rng(5)
    ring = Ring(50, 32)
    far = (rng.normal(size=32) * 4).astype(np.float32)
    for _ in range(6):
        ring.add(Entry(far + rng.normal(size=32).astype(np.float32), 0.0, 1, 0, 0, 0.0))
    ring.add(Entry(far, 0.0, 1, 0, 0, 0.0))
    nb = ring.nearest(far.copy(), 4, radius=1e3, now=1.0)
    assert nb.dist[0] == 0.0
    assert nb.within == 6  # the others, not the re-sent input itself


def test_an_entry_keeps_its_cross_account_flags_on_the_way_to_another_replica() -> None:
    """Whether a query landed in another principal's campaign (the moved-campaign count) and
    whether it was a catalogue item (it explains the sender's later edits) must survive the
    shared logs, or replicas would count a moved campaign differently."""
    v = np.arange(4, dtype=np.float32)
    for moved, known in ((True, False), (False, True), (True, True), (False, False)):
        e = Entry(v, 1.0, 7, 2, 3, 0.5, True, 1.25, 11, 0.5, False, moved, known)
        back = Entry.from_bytes(e.to_bytes())
        assert (back.moved, back.known, back.suspect, back.root) == (moved, known, True, 11)


def test_a_ring_holds_room_for_what_it_holds_and_never_more_than_its_bound() -> None:
    """Rings grow with their principal's queries (most principals send a few dozen): a user
    with 40 queries holds a few KiB, not the 2 MiB of a full history; across the growth
    steps and the wrap the search still sees exactly the entries held."""
    rng = np.random.default_rng(3)
    dim, cap = 32, 1000
    pts = rng.normal(size=(2500, dim)).astype(np.float32)
    ring = Ring(cap, dim)
    sizes = []
    for i, p in enumerate(pts):
        ring.add(Entry(p, float(i), i, 0, 0, 0.0))
        sizes.append(ring.nbytes)
        if i + 1 in (40, 65, 129, 999, 1000, 2500):
            kept = pts[max(0, i + 1 - cap) : i + 1]
            q = kept[len(kept) // 2] + rng.normal(0, 0.05, dim).astype(np.float32)
            d = np.sqrt(((kept - q) ** 2).sum(1))
            far = np.sort(d)
            nb = ring.nearest(q, 3, radius=float(far[5] + far[6]) / 2, now=0.0)
            assert nb.within == 6
            np.testing.assert_allclose(nb.dist, np.sort(d)[:3], rtol=1e-5, atol=1e-5)
    bound = Ring.bound(cap, dim)
    assert sizes[39] * 10 < bound  # 40 queries: 64 slots of 1,000
    assert max(sizes) == sizes[-1] == bound  # full, and never beyond
    assert len(set(sizes)) == 5  # 64, 128, 256, 512, then 1,000 slots


def test_extractions_history_grows_in_batches_and_keeps_every_entry_in_its_slot() -> None:
    """PRADA's history takes batches of up to 64 queries; growing (64 rows, doubling) it keeps
    each entry at the slot it would have had in an array allocated whole, through the wrap."""
    from bastion.detect.extraction import _Points

    rng = np.random.default_rng(4)
    pts = rng.normal(size=(3000, 6)).astype(np.float32)
    ring, seq = _Points(500, 6), 0
    held = []
    while seq < len(pts):
        m = min(int(rng.integers(1, 65)), len(pts) - seq)
        ring.extend(pts[seq : seq + m], (pts[seq : seq + m] ** 2).sum(1), np.arange(seq, seq + m))
        seq += m
        held.append(ring.nbytes)
        first = seq - ring.size
        slots = np.arange(first, seq) % ring.capacity
        np.testing.assert_array_equal(ring.vec[slots], pts[first:seq])
        np.testing.assert_array_equal(ring.label[slots], np.arange(first, seq))
    assert held[0] < held[-1] == _Points.bound(500, 6)
