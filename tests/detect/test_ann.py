"""The approximate global index (faiss HNSW graphs): it finds what the exact search finds,
forgets what the ring overwrote, and catches a campaign spread over accounts as the exact
search does."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bastion.detect.arena import Arena
from bastion.detect.campaigns import victims
from bastion.detect.history import Entry, Ring
from bastion.detect.profile import Profile
from bastion.detect.streams import Task, benign_streams
from bastion.errors import ConfigError
from tests.detect.conftest import rows_similarity
from tests.detect.test_cross_account import _adaptive

pytest.importorskip("faiss")


def test_hnsw_finds_the_neighbours_the_exact_search_finds_on_benign_traffic(
    rows8_task: Task, rows8_profile: Path
) -> None:
    """Real users' queries (items re-sent by many users, repeats, edits, bursts) through rings
    of 2,000 turned over several times: the graphs' candidates hold the entries truly within
    the radius (brute force), and the k nearest the ring returns are the exact search's."""
    profile = Profile.load(rows8_profile)
    x = np.concatenate([s.queries for s in benign_streams(rows8_task, 200, seed=7)])[:7000]
    vs = profile.encode(x)
    r = profile.radius
    exact, approx = Ring(2000, profile.dim), Ring(2000, profile.dim, index="hnsw")
    assert approx.graphs is not None
    same = asked = true = found = 0
    for i, v in enumerate(vs):
        if i >= 500:
            held = exact.vec[: exact.size]
            near = set(np.flatnonzero(np.square(held - v).sum(1) <= r * r).tolist())
            got = set(approx.graphs.candidates(v, r * r, approx.size).tolist())
            assert got <= set(range(approx.size))  # slots the ring holds
            true, found = true + len(near), found + len(near & got)
            a = exact.nearest(v, 8, r, now=float(i))
            b = approx.nearest(v, 8, r, now=float(i))
            asked += 1
            same += int(a.dist.shape == b.dist.shape and np.allclose(a.dist, b.dist, atol=1e-6))
        for ring in (exact, approx):
            ring.add(Entry(v, float(i), i // 40, 0, 0, 0.0))
    assert asked == 6500 and true > 10_000
    assert found / true >= 0.99, found / true
    assert same / asked >= 0.99, same / asked


def test_hnsw_forgets_what_the_ring_overwrote_and_keeps_its_graphs_bounded() -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(1000, 8)).astype(np.float32)
    ring = Ring(100, 8, index="hnsw")
    for i, p in enumerate(pts):
        ring.add(Entry(p, float(i), i, 0, 0, 0.0))
    assert ring.graphs is not None and len(ring.graphs.gens) <= 5  # 4 per ring, 1 filling
    assert ring.nearest(pts[0] + 0.001, 1, radius=0.05, now=1e3).dist.size == 0  # overwritten
    nb = ring.nearest(pts[-1] + 0.001, 1, radius=0.05, now=1e3)
    assert int(nb.owner[0]) == 999
    held = sum(len(g.members) for g in ring.graphs.gens)
    assert 100 <= held <= 125  # the ring's 100 entries and at most one graph's worth more


def test_without_faiss_the_hnsw_index_is_a_config_error_with_a_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    with pytest.raises(ConfigError) as err:
        Ring(100, 8, index="hnsw")
    assert "bastion[ann]" in (err.value.hint or "")


@pytest.mark.parametrize("index", ["exact", "hnsw"])
def test_a_campaign_spread_over_accounts_is_caught_through_the_hnsw_index(
    cancer: Task, cancer_profile: Path, index: str
) -> None:
    """The cross-account signals read the global history through its index: with graphs,
    fresh accounts of the adaptive Square are degraded at their first answer, as with the
    exact search."""
    entry = {**rows_similarity(cancer_profile), "global_index": index}
    arena = Arena(cancer, [entry])
    target = _adaptive(arena, victims(arena, 1)[0], budget=120, accounts=5)
    first, *fresh = [p.tally for p in target.used]
    assert first.detected_at is not None
    assert fresh
    assert all(t.stopped_at == 1 for t in fresh[:-1]), fresh
