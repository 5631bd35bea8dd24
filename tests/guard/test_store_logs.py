"""Detector logs: every store hands each replica exactly what the others appended since its
cursor — in order, bounded, never its own entries back, one call for several keys."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bastion.guard.stores.base import LogAppend, LogRead, LogSlice, Store
from bastion.guard.stores.sqlite import SQLiteStore


def put(store: Store, origin: str, key: str, *items: str, max_items: int = 100) -> None:
    store.append_logs(origin, [LogAppend(key, [i.encode() for i in items], max_items)])


def read(store: Store, origin: str, key: str, cursor: int, limit: int = 100) -> LogSlice:
    return store.read_logs(origin, [LogRead(key, cursor, limit)])[0]


def texts(s: LogSlice) -> list[str]:
    return [i.decode() for i in s.items]


def test_a_cursor_returns_only_what_was_appended_after_it(store: Store) -> None:
    put(store, "A", "k", "a1", "a2", "a3")
    first = read(store, "B", "k", 0)
    assert texts(first) == ["a1", "a2", "a3"]
    put(store, "A", "k", "a4")
    put(store, "A", "k", "a5")
    second = read(store, "B", "k", first.cursor)
    assert texts(second) == ["a4", "a5"] and second.cursor > first.cursor
    third = read(store, "B", "k", second.cursor)
    assert third.items == [] and third.cursor == second.cursor  # nothing new, cursor stays


def test_a_reader_never_gets_its_own_entries_back_but_moves_past_them(store: Store) -> None:
    put(store, "A", "k", "a1")
    put(store, "B", "k", "b1")
    put(store, "A", "k", "a2")
    put(store, "B", "k", "b2", "b3")
    seen_by_a = read(store, "A", "k", 0)
    assert texts(seen_by_a) == ["b1", "b2", "b3"]  # interleaved order kept, own dropped
    assert texts(read(store, "B", "k", 0)) == ["a1", "a2"]
    put(store, "A", "k", "a3")
    assert read(store, "A", "k", seen_by_a.cursor).items == []  # only its own since then
    # an origin that is a prefix of another is still a different origin
    put(store, "AB", "k", "ab1")
    assert texts(read(store, "A", "k", seen_by_a.cursor)) == ["ab1"]


def test_logs_are_bounded_and_reads_are_limited_to_the_newest(store: Store) -> None:
    for i in range(10):
        put(store, "A", "k", f"a{i}", max_items=4)
    assert texts(read(store, "B", "k", 0)) == ["a6", "a7", "a8", "a9"]
    assert texts(read(store, "B", "k", 0, limit=2)) == ["a8", "a9"]
    # a reader whose cursor points into the trimmed part gets what is left, no gap-filling
    assert texts(read(store, "B", "k", 2)) == ["a6", "a7", "a8", "a9"]
    # one batch longer than the bound keeps its newest items
    put(store, "A", "big", *[f"b{i}" for i in range(7)], max_items=3)
    assert texts(read(store, "B", "big", 0)) == ["b4", "b5", "b6"]


def test_several_keys_in_one_call_have_independent_cursors(store: Store) -> None:
    store.append_logs(
        "A",
        [LogAppend("p:alice", [b"x1", b"x2"], 10), LogAppend("global", [b"g1"], 10)],
    )
    alice, glob, nobody = store.read_logs(
        "B", [LogRead("p:alice", 0, 10), LogRead("global", 0, 10), LogRead("p:bob", 0, 10)]
    )
    assert texts(alice) == ["x1", "x2"] and texts(glob) == ["g1"]
    assert nobody == LogSlice([], 0)
    store.append_logs("A", [LogAppend("global", [b"g2"], 10), LogAppend("empty", [], 10)])
    alice2, glob2 = store.read_logs(
        "B", [LogRead("p:alice", alice.cursor, 10), LogRead("global", glob.cursor, 10)]
    )
    assert alice2.items == [] and texts(glob2) == ["g2"]


def test_two_sqlite_connections_share_logs_and_survive_reopen(tmp_path: Path) -> None:
    a, b = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    put(a, "A", "k", "a1")
    seen = read(b, "B", "k", 0)
    put(b, "B", "k", "b1")
    put(a, "A", "k", "a2")
    assert texts(seen) == ["a1"] and texts(read(b, "B", "k", seen.cursor)) == ["a2"]
    a.close()
    b.close()
    again = SQLiteStore(tmp_path / "s.db")
    assert texts(read(again, "C", "k", 0)) == ["a1", "b1", "a2"]
    again.close()


@pytest.mark.redis
def test_redis_logs_expire_and_a_stale_cursor_reads_the_new_log_from_its_start(
    redis_url: str,
) -> None:
    from bastion.guard.stores.redis import RedisStore

    a, b = RedisStore(redis_url), RedisStore(redis_url)  # two replicas, two connections
    try:
        a.append_logs("A", [LogAppend("k", [b"a1", b"a2", b"a3"], 10, ttl_s=0.3)])
        old = read(b, "B", "k", 0)
        assert texts(old) == ["a1", "a2", "a3"]
        time.sleep(0.5)
        assert read(b, "B", "k", 0) == LogSlice([], 0)  # list and counter both expired
        for i in range(5):  # a new log, longer than the old one by the time B looks again
            put(a, "A", "k", f"n{i}")
        again = read(b, "B", "k", old.cursor)
        assert texts(again) == [f"n{i}" for i in range(5)]  # none skipped as "already seen"
        # and a cursor from a future the server forgot (e.g. its clock moved back) reads all
        assert texts(read(b, "B", "k", again.cursor + 10**12)) == texts(again)
    finally:
        a.close()
        b.close()


def test_a_cold_reader_can_ask_for_its_own_entries_too(store: Store) -> None:
    put(store, "A", "k", "a1")
    put(store, "B", "k", "b1")
    cold = store.read_logs("A", [LogRead("k", 0, 10, own=True)])[0]
    assert texts(cold) == ["a1", "b1"]


@pytest.mark.redis
def test_redis_reloads_its_scripts_when_the_server_lost_them(redis_url: str) -> None:
    import redis

    from bastion.guard.stores.redis import RedisStore

    store = RedisStore(redis_url)
    try:
        put(store, "A", "k", "a1")
        redis.Redis.from_url(redis_url).script_flush()  # what a restarted server looks like
        put(store, "A", "k", "a2")
        assert texts(read(store, "B", "k", 0)) == ["a1", "a2"]
    finally:
        store.close()


def test_a_dead_redis_is_a_store_error_for_logs(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    from bastion.errors import StoreError
    from bastion.guard.stores.redis import RedisStore
    from tests.guard.servers import free_port

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)  # nothing listens
    with pytest.raises(StoreError):
        put(store, "A", "k", "a1")
    with pytest.raises(StoreError):
        read(store, "A", "k", 0)
    store.close()


def test_a_read_can_append_in_the_same_call_after_reading(store: Store) -> None:
    put(store, "B", "k", "b1")
    got = store.read_logs("A", [LogRead("k", 0, 10)], [LogAppend("k", [b"a1"], 10)])
    assert [texts(s) for s in got] == [["b1"]]  # what was there before A's own entry
    assert texts(read(store, "B", "k", 0)) == ["a1"]
    assert read(store, "A", "k", got[0].cursor).items == []  # A's own entry is not handed back
