"""Sign steps: an L∞ attack's vertices are seen from its first step; users' edits are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bastion.detect.arena import Arena
from bastion.detect.calibration import development
from bastion.detect.campaigns import bastion_run, victims
from bastion.detect.profile import Profile
from bastion.detect.steps import SignSteps, feature_grid
from bastion.detect.streams import Task, benign_streams
from tests.detect.conftest import rows_similarity


def _hits(steps: SignSteps, rows: np.ndarray) -> list[bool]:
    return [steps.step(r) for r in rows]


def test_vertices_of_one_linf_ball_are_sign_steps_from_each_other_and_from_the_seed() -> None:
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=20)
    signs = rng.choice([-1.0, 1.0], size=(6, 20))
    signs[2:, 5:] = signs[1, 5:]  # later vertices share most signs: steps of a few features
    queries = np.vstack([x0, np.clip(x0 + 0.3 * signs, -2.5, 2.5)])
    hits = _hits(SignSteps(4, 3), queries)
    assert hits[0] is False  # nothing to compare the seed with
    assert all(hits[1:]), hits
    # a guard replica that sees every other query sees it too: any two vertices differ by ±2ε
    assert all(_hits(SignSteps(4, 3), queries[1::2])[1:])


def test_benign_row_edits_are_never_sign_steps(rows8_task: Task) -> None:
    """The calibration streams' edits (a few features moved by the feature's own scale,
    rounded) and their switches between items: no query of 500 users is a sign step."""
    fit = development(rows8_task)
    grid = feature_grid(fit.x_fit)
    for s in benign_streams(fit, 500, seed=101):
        assert not any(_hits(SignSteps(4, 3, grid), s.queries)), s.principal


def test_whole_grid_steps_of_counts_are_edits_but_a_real_valued_step_is_not() -> None:
    """A table of counts: a user who adds one to three of them moves each by exactly one;
    that is an edit when the fit data show the grid, and only then. An ε that lands
    between the grid's values is still a sign step."""
    rng = np.random.default_rng(1)
    fit = rng.integers(0, 40, size=(500, 6)).astype(np.float64)
    grid = feature_grid(fit)
    assert np.array_equal(grid, np.ones(6, np.float32))
    row = fit[0]
    edit = row + np.array([1.0, -1.0, 1.0, 0.0, 0.0, 0.0])
    assert _hits(SignSteps(4, 3), np.vstack([row, edit])) == [False, True]
    assert _hits(SignSteps(4, 3, grid), np.vstack([row, edit])) == [False, False]
    attack = row + 0.3 * rng.choice([-1.0, 1.0], size=6)
    assert _hits(SignSteps(4, 3, grid), np.vstack([row, attack])) == [False, True]


def test_feature_grid_finds_counts_and_fixed_decimals_and_no_grid_in_real_values() -> None:
    rng = np.random.default_rng(2)
    cols = np.column_stack(
        [
            rng.integers(0, 9, 300) * 2.0 + 1.0,  # odd numbers: a grid of 2 from an offset
            np.round(rng.normal(size=300), 2),  # recorded to two decimals
            rng.normal(size=300),  # real-valued
            np.full(300, 3.0),  # constant: nothing to step on
        ]
    )
    assert np.allclose(feature_grid(cols), [2.0, 0.01, 0.0, 0.0], atol=1e-6)


def test_a_profile_keeps_the_grid_of_its_rows(rows8_profile: Path, tmp_path: Path) -> None:
    from bastion.detect.profile import fit_profile

    prof = Profile.load(rows8_profile)
    assert prof.grid is not None and not prof.grid.any()  # rows8's features are real-valued
    counts = np.random.default_rng(3).integers(0, 5, size=(200, 4)).astype(np.float64)
    fit_profile(counts).save(tmp_path / "counts.json")
    grid = Profile.load(tmp_path / "counts.json").grid
    assert grid is not None and np.array_equal(grid, np.ones(4, np.float32))


def test_square_that_breaks_a_row_in_three_queries_is_caught_by_its_sign_steps(
    rows8_task: Task, rows8_profile: Path
) -> None:
    """rows8's second victim falls to bastion's Square at its third query (the seed, the
    stripes, one square), before any campaign links or swarms: its two sign steps are
    evidence by then. Without the sign-step score it goes unseen."""
    entry = rows_similarity(rows8_profile)
    arena = Arena(rows8_task, [entry])
    i = victims(arena, 2)[1]
    tally = bastion_run(arena, "square-linf", i, budget=200)
    assert tally.success and tally.queries == 3  # (the run described above)
    assert tally.detected_at == 3
    off = {**entry, "weights": {**entry["weights"], "sign_step": 0.0}}
    tally = bastion_run(Arena(rows8_task, [off]), "square-linf", i, budget=200)
    assert tally.success and tally.detected_at is None
