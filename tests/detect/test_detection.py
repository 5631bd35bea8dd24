"""Real attacks through a real (in-process) guard are detected; benign users are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bastion.detect.arena import Arena, PrincipalTarget, replay
from bastion.detect.campaigns import adaptive_run, art_run, bastion_run, extraction_run, victims
from bastion.detect.streams import MIN_QUERIES, Task, benign_streams
from bastion.errors import TargetError
from tests.detect.conftest import rows_similarity


def _benign_flagged(arena: Arena, n: int, seed: int) -> list[str]:
    return replay(arena, benign_streams(arena.task, n, seed=seed, mean_queries=30))[0]


@pytest.fixture
def image_arena(digits: Task, digits_profile: Path) -> Arena:
    return Arena(digits, [{"kind": "similarity", "profile": str(digits_profile)}])


@pytest.fixture
def tabular_arena(cancer: Task, cancer_profile: Path) -> Arena:
    return Arena(cancer, [rows_similarity(cancer_profile)])


@pytest.mark.parametrize("attack", ["simba-pixel", "hopskipjump-l2", "boundary", "rays"])
def test_bastion_attacks_on_images_are_detected_within_a_few_dozen_queries(
    image_arena: Arena, attack: str
) -> None:
    for i in victims(image_arena, 2, offset=2):
        tally = bastion_run(image_arena, attack, i, budget=300)
        assert tally.detected_at is not None, (attack, i, tally)
        assert tally.detected_at <= 40
    # the guard's actions follow the evidence: the attacker was degraded or blocked
    assert tally.stopped_at is not None


def test_score_attack_on_rows_is_stopped_before_it_succeeds(tabular_arena: Arena) -> None:
    for i in victims(tabular_arena, 3):
        tally = bastion_run(tabular_arena, "simba-pixel", i, budget=400)
        assert tally.detected_at is not None and tally.detected_at <= 15
        assert not tally.success


def test_square_on_rows_is_caught_by_its_swarm_although_its_steps_never_link(
    tabular_arena: Arena,
) -> None:
    """Square's L-inf steps on rows exceed the near-radius; the swarm of recent queries
    around one point catches it (it used to go unseen for 65 queries or more)."""
    for i in victims(tabular_arena, 2):
        tally = bastion_run(tabular_arena, "square-linf", i, budget=200)
        assert tally.detected_at is not None and tally.detected_at <= 20, tally
    kinds = tabular_arena.guard.store.get_state(tally.principal).evidence
    assert kinds.get("similarity", 0) >= 2


def test_benign_users_with_repeats_edits_and_bursts_are_not_flagged(
    image_arena: Arena, tabular_arena: Arena
) -> None:
    assert _benign_flagged(image_arena, 50, seed=11) == []
    assert _benign_flagged(tabular_arena, 50, seed=12) == []


@pytest.mark.parametrize("which", ["image", "tabular"])
def test_random_starts_that_find_nothing_are_still_caught(
    image_arena: Arena, tabular_arena: Arena, which: str
) -> None:
    """A decision attack's search for a starting point sends unrelated noise inputs; none
    links to another, but benign users never send inputs that far from all benign data."""
    arena = image_arena if which == "image" else tabular_arena
    t = arena.task
    rng = np.random.default_rng(5)
    pt = PrincipalTarget(arena, f"noise-{which}")
    for _ in range(12):
        try:
            pt.query((t.lower + rng.random(t.lower.size) * (t.upper - t.lower))[None])
        except TargetError:  # blocked: the evidence went past the last level
            break
    assert pt.tally.detected_at is not None and pt.tally.detected_at <= 10
    assert arena.guard.store.get_state(pt.tally.principal).evidence["similarity"] >= 2


def test_detection_does_not_reject_the_query_that_raised_it(image_arena: Arena) -> None:
    i = victims(image_arena, 1)[0]
    tally = bastion_run(image_arena, "square-linf", i, budget=300)
    assert tally.detected_at is not None and tally.stopped_at is not None
    assert tally.stopped_at > tally.detected_at  # no per-query "you were caught" signal


def test_a_campaign_moved_to_a_new_account_is_caught_through_the_global_history(
    digits: Task, digits_profile: Path
) -> None:
    arena = Arena(
        digits,
        [{"kind": "similarity", "profile": str(digits_profile)}],
        actions=[{"at": 2.0, "action": "flag"}, {"at": 4.0, "action": "block"}],
    )
    x0 = digits.x_test[victims(arena, 1)[0]]
    rng = np.random.default_rng(3)
    first = PrincipalTarget(arena, "sybil-a")
    x = x0.copy()
    for _ in range(40):  # a descent chain of small steps
        x = np.clip(
            x + rng.choice([-0.02, 0.02], size=x.shape) * (rng.random(x.shape) < 0.05), 0, 1
        )
        try:
            first.query(x[None])
        except TargetError:
            break
    assert first.tally.detected_at is not None
    second = PrincipalTarget(arena, "sybil-b")
    for _ in range(5):  # continues from where the blocked account stopped
        x = np.clip(
            x + rng.choice([-0.02, 0.02], size=x.shape) * (rng.random(x.shape) < 0.05), 0, 1
        )
        second.query(x[None])
    state = arena.guard.store.get_state("sybil-b")
    assert state.evidence.get("similarity", 0) > 0
    assert second.tally.detected_at is not None and second.tally.detected_at <= 5


def test_adaptive_attacker_burns_its_accounts_without_succeeding(image_arena: Arena) -> None:
    i = victims(image_arena, 1, offset=5)[0]
    tally = adaptive_run(image_arena, i, budget=1000, accounts=4)
    assert tally.detected_at is not None
    assert tally.extra["accounts"] == 4
    assert not tally.success


def test_art_hopskipjump_through_the_guard_is_detected(image_arena: Arena) -> None:
    pytest.importorskip("art")
    i = victims(image_arena, 1)[0]
    tally = art_run(image_arena, "art-hopskipjump", i, budget=300)
    assert tally.queries > 0
    assert tally.detected_at is not None


def test_extraction_with_synthetic_and_natural_queries_is_detected_before_a_good_copy(
    digits: Task, digits_profile: Path
) -> None:
    arena = Arena(
        digits,
        [
            {"kind": "similarity", "profile": str(digits_profile)},
            {"kind": "extraction", "profile": str(digits_profile)},
        ],
    )
    for strategy in ("random", "natural"):
        tally = extraction_run(arena, strategy, budget=100, seed=1)
        assert tally.detected_at is not None, strategy
        assert tally.extra["fidelity_at_detection"] < 0.8
        assert not tally.success


def test_art_runs_are_reproducible_and_leave_the_global_rngs_as_they_were(
    digits: Task, digits_profile: Path
) -> None:
    pytest.importorskip("art")
    import random

    i = victims(Arena(digits, []), 1)[0]
    np_before, py_before = np.random.get_state()[1].copy(), random.getstate()
    runs = []
    for _ in range(2):  # a fresh guard each time: the same attack must send the same queries
        arena = Arena(digits, [{"kind": "similarity", "profile": str(digits_profile)}])
        for attack in ("art-square", "art-hopskipjump"):
            t = art_run(arena, attack, i, budget=120)
            runs.append((attack, t.queries, t.detected_at, t.success))
    assert runs[:2] == runs[2:]
    assert np.array_equal(np.random.get_state()[1], np_before)
    assert random.getstate() == py_before


def test_extraction_of_a_table_that_takes_many_answers_to_copy_is_caught_before_a_good_copy(
    rows8_task: Task, rows8_profile: Path
) -> None:
    """On rows too, when copying takes more than a handful of answers (eight classes), the
    natural-data (Knockoff-style) copier is caught while its copy is still poor."""
    path = rows8_profile
    arena = Arena(
        rows8_task,
        [
            {
                "kind": "similarity",
                "profile": str(path),
                "weights": {"flip": 0.4, "swarm_each": 0.0},
                "distinct_window": False,
            },
            {"kind": "extraction", "profile": str(path)},
        ],
    )
    tally = extraction_run(arena, "natural", budget=150, seed=1)
    curve = dict(tally.extra["curve"])
    assert curve[10] < 0.6  # ten answers are far from enough here (cancer: 0.99)
    assert tally.detected_at is not None and tally.detected_at <= 40
    assert tally.extra["fidelity_at_detection"] < 0.8
    assert not tally.success


def test_a_two_class_table_is_copied_within_the_few_answers_every_user_sends(
    cancer: Task,
) -> None:
    """The extraction curve counts the first answers one by one, so it shows when "caught
    before fidelity 0.8" cannot be met: on cancer a copy is that good before a benign user's
    shortest stream ends, while on rows8 ten answers are far from it."""
    firsts = []
    for seed in range(5):
        tally = extraction_run(Arena(cancer, []), "natural", budget=10, seed=seed)
        curve = tally.extra["curve"]
        assert [q for q, _ in curve][-1] == 10 and len(curve) > 1
        good = [q for q, f in curve if f >= 0.8]
        firsts.append(good[0] if good else 99)
    assert float(np.median(firsts)) <= MIN_QUERIES


def test_art_square_on_images_is_detected_although_it_re_sends_its_best_twice(
    image_arena: Arena,
) -> None:
    """ART's Square re-sends its current best twice per candidate and its first squares do not
    link: the window of distinct inputs and the swarm still catch it within a dozen of them."""
    pytest.importorskip("art")
    for i in victims(image_arena, 3):
        tally = art_run(image_arena, "art-square", i, budget=300)
        assert tally.detected_at is not None and tally.detected_at <= 36, (i, tally)


def test_benign_principals_hold_a_small_part_of_the_bound_on_memory(
    cancer: Task, cancer_profile: Path
) -> None:
    """Histories grow with use: 80 ordinary users (about 40 queries each) hold 18.5 KiB of
    similarity history and 15 KiB of extraction history each, where histories allocated
    whole at the first query held the full bound (2.2 MiB per principal here: 23 GB for the
    10,000 principals a guard keeps by default)."""
    arena = Arena(
        cancer,
        [
            {"kind": "similarity", "profile": str(cancer_profile)},
            {"kind": "extraction", "profile": str(cancer_profile)},
        ],
    )
    replay(arena, benign_streams(cancer, 80, seed=5))
    for policy in arena.guard.policies:
        for det in getattr(policy, "detectors", []):
            inner = getattr(det, "det", det)
            n, held = inner.memory_held()
            assert n == 80
            assert held / n < inner.memory_bytes() / 10, (inner.name, held / n)
