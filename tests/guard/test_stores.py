"""Every store keeps the same promises: counters, review queue, evidence, bounded histories."""

from __future__ import annotations

from pathlib import Path

import pytest
from limits import parse
from limits.strategies import FixedWindowRateLimiter

from bastion.guard.stores.base import ReviewCase, Store
from bastion.guard.stores.sqlite import SQLiteStore


def test_rate_limit_counters(store: Store) -> None:
    limiter = FixedWindowRateLimiter(store.rate_limit_storage())
    item = parse("3/minute")
    assert [limiter.hit(item, "p", "alice") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(item, "p", "bob")
    assert limiter.get_window_stats(item, "p", "alice").remaining == 0


def test_review_queue(store: Store) -> None:
    case = ReviewCase("alice", "low_confidence", {"x": [[1.0]]}, {"labels": [1]})
    store.put_case(case)
    assert [c.id for c in store.list_cases("pending")] == [case.id]
    done = store.resolve_case(case.id, "approve", "rita")
    assert done is not None and done.status == "resolved" and done.resolved_by == "rita"
    assert store.list_cases("pending") == []
    assert store.get_case(case.id).resolution == "approve"  # type: ignore[union-attr]
    assert store.resolve_case("nope", "x", "y") is None


def test_evidence_and_actions(store: Store) -> None:
    store.add_evidence("mallory", "similarity", 1.5)
    state = store.add_evidence("mallory", "similarity", 1.0)
    assert state.total == pytest.approx(2.5)
    store.set_action("mallory", "throttle", None)
    assert store.get_state("mallory").active_action() == "throttle"
    store.set_action("mallory", "block", 1.0)  # expired long ago
    assert store.get_state("mallory").active_action() is None
    assert store.get_state("alice").total == 0


def test_histories_are_bounded(store: Store) -> None:
    for i in range(10):
        store.append_history("h:alice", str(i).encode(), 4)
    assert store.read_history("h:alice") == [b"6", b"7", b"8", b"9"]
    assert store.read_history("h:alice", 2) == [b"8", b"9"]


def test_sqlite_state_survives_reopen(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "s.db")
    limiter = FixedWindowRateLimiter(s.rate_limit_storage())
    item = parse("2/hour")
    limiter.hit(item, "alice")
    limiter.hit(item, "alice")
    s.add_evidence("mallory", "d", 3.0)
    s.close()
    s = SQLiteStore(tmp_path / "s.db")
    assert not FixedWindowRateLimiter(s.rate_limit_storage()).hit(item, "alice")
    assert s.get_state("mallory").total == 3.0
    s.close()
