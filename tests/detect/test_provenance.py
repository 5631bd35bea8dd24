"""The campaign window judges one lineage at a time, plus the signals that need none."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.detect.arena import Arena
from bastion.detect.provenance import Campaign
from bastion.detect.streams import Task
from bastion.errors import ConfigError


def test_short_unrelated_lineages_do_not_add_up_but_one_long_lineage_does() -> None:
    benign = Campaign(window=12, trigger=2.4)
    # a user's items, each with a burst of three edits near the decision boundary (0.55 each)
    released = [benign.add(0.55, root=item) for item in (1, 2, 3, 4) for _ in range(3)]
    assert sum(released) == 0 and not benign.active
    attack = Campaign(window=12, trigger=2.4)
    released = [attack.add(0.55, root=7) for _ in range(5)]
    assert released[:4] == [0.0] * 4 and released[4] > 2.4 and attack.active
    assert attack.add(0.15, root=99) == 0.15  # once active, every query adds its own score


def test_lineage_free_signals_count_for_every_lineage() -> None:
    camp = Campaign(window=12, trigger=2.4)
    for k in range(4):  # random starts far from all benign data, each its own lineage
        assert camp.add(0.0, root=100 + k, free=0.5) == 0.0
    assert camp.add(0.55, root=7) > 2.4  # ... and they count towards the next lineage


def test_callers_without_lineages_get_the_plain_window_sum() -> None:
    camp = Campaign(window=4, trigger=1.0)
    assert [camp.add(0.3) for _ in range(4)] == [0.0, 0.0, 0.0, 1.2]


def test_weights_are_configurable_and_unknown_ones_are_a_config_error(
    cancer: Task, cancer_profile: Path
) -> None:
    entry = {"kind": "similarity", "profile": str(cancer_profile)}
    arena = Arena(cancer, [{**entry, "weights": {"flip": 0.4, "crowd_at": 5}}])
    det = next(d for p in arena.guard.policies for d in getattr(p, "detectors", []))
    assert det.det.weights.flip == 0.4 and det.det.weights.crowd_at == 5
    with pytest.raises(ConfigError, match="unknown weights"):
        Arena(cancer, [{**entry, "weights": {"flipp": 1}}])


def test_a_bisection_midpoint_continues_the_search_and_its_halving_is_shrinking() -> None:
    """A binary search's midpoint is exactly as near to the last midpoint as to the end point:
    it descends from the deeper of the two, and its step, half the last one, shrinks."""
    import numpy as np

    from bastion.detect.history import Entry, Ring
    from bastion.detect.provenance import Weights, link

    ring = Ring(16, 2)
    end, mid = np.array([0.0, 0.0], np.float32), np.array([0.4, 0.0], np.float32)
    ring.add(Entry(end, 0.0, 1, 0, 0, 0.0, root=11))  # an end point, its own lineage
    ring.add(Entry(np.array([0.8, 0.0], np.float32), 0.0, 1, 1, 0, 0.0, root=22))
    ring.add(Entry(mid, 0.0, 1, 1, 1, 0.4, root=22))  # the first midpoint (depth 1)
    nxt = np.array([0.2, 0.0], np.float32)  # halfway between the end point and the midpoint
    own = ring.nearest(nxt, 8, radius=0.5, now=1.0)
    assert own.dist[0] == pytest.approx(own.dist[1])
    ln = link(own, own, 1, 0, 0.5, Weights())
    assert ln.root == 22 and ln.depth == 2
    assert "shrinking_steps" in ln.patterns and "boundary_hugging" in ln.patterns
