"""The inline Shapiro-Wilk statistic agrees with scipy's, and profiles share features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import shapiro

from bastion.detect.normality import shapiro_w
from bastion.detect.profile import Profile, fit_profile


@pytest.mark.parametrize("n", [3, 4, 5, 6, 11, 30, 137, 500])
@pytest.mark.parametrize("shape", ["normal", "exponential", "uniform", "bimodal"])
def test_w_matches_scipy(n: int, shape: str) -> None:
    rng = np.random.default_rng(n)
    x = {
        "normal": lambda: rng.normal(size=n),
        "exponential": lambda: rng.exponential(size=n),
        "uniform": lambda: rng.uniform(size=n),
        "bimodal": lambda: np.r_[rng.normal(0, 1, n // 2), rng.normal(8, 1, n - n // 2)],
    }[shape]()
    assert shapiro_w(x) == pytest.approx(float(shapiro(x).statistic), abs=1e-6)


def test_w_separates_normal_from_skewed_samples() -> None:
    rng = np.random.default_rng(0)
    assert shapiro_w(rng.normal(size=400)) > 0.99
    assert shapiro_w(rng.exponential(size=400) ** 3) < 0.6


@pytest.mark.parametrize("bad", [np.ones(40), np.zeros(2)])
def test_w_refuses_samples_it_is_undefined_for(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        shapiro_w(bad)


def test_profiles_loaded_from_one_file_encode_an_observation_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    prof = fit_profile(rng.normal(size=(200, 12)))
    prof.save(tmp_path / "p.json")
    a, b = Profile.load(tmp_path / "p.json"), Profile.load(tmp_path / "p.json")
    other = fit_profile(rng.normal(size=(200, 12)) * 3)
    x = rng.normal(size=(1, 12))
    memo: dict[object, object] = {}
    first = a.features(x, memo)
    assert b.features(x, memo) is first  # the same feature map: computed once
    np.testing.assert_allclose(first, a.encode(x), rtol=1e-6)
    assert other.digest != a.digest
    np.testing.assert_allclose(other.features(x, memo), other.encode(x), rtol=1e-6)


# 40: a first batch larger than the history; 100: one that fills the ring's slack (64 queries
# are measured at the latest); 200 queries wrap the ring, history and slack, twice
@pytest.mark.parametrize("first_check", [8, 40, 100])
def test_extraction_measures_batched_queries_as_it_would_one_by_one(first_check: int) -> None:
    """The distances PRADA judges, the cells visited and the off-manifold count equal a
    brute-force replay in arrival order, also when the history overflows its ring."""
    from bastion.detect.extraction import ExtractionDetector, ExtractionOptions
    from bastion.guard.policies.detection import Observation
    from bastion.guard.request import Prediction
    from bastion.guard.stores.memory import MemoryStore

    rng = np.random.default_rng(3)
    prof = fit_profile(rng.normal(size=(300, 6)), dim=6, n_cells=8)
    det = ExtractionDetector(
        ExtractionOptions(profile="-", history=16, min_queries=first_check, check_every=3),
        profile=prof,
    )
    store = MemoryStore()
    xs = np.r_[rng.normal(size=(150, 6)), rng.normal(size=(50, 6)) * 6]  # some off-manifold
    xs[10] = xs[4]  # a repeat: never judged by PRADA
    ys = rng.integers(0, 3, size=len(xs))
    for x, y in zip(xs, ys, strict=True):
        det.observe(Observation("p", {"x": x[None]}, Prediction(np.array([y])), 0.0), store)
    st = det.states["p"]
    det._settle(st)
    e = prof.encode(xs).astype(np.float64)
    want, visited, far = [], set(), 0
    for i in range(len(e)):
        prev = [j for j in range(max(0, i - 16), i) if ys[j] == ys[i]]
        if prev:
            d = float(np.sqrt(((e[prev] - e[i]) ** 2).sum(1)).min())
            if d > prof.radius:
                want.append(d)
        to_cells = np.sqrt(((prof.cells - e[i]) ** 2).sum(1))
        visited.add(int(to_cells.argmin()))
        far += int(to_cells.min() > prof.cell_radius)
    np.testing.assert_allclose(st.dist.ordered(), want, rtol=1e-4, atol=1e-4)
    assert set(np.flatnonzero(st.visited).tolist()) == visited
    assert st.far == far > 0
    assert st.n == len(xs)


def test_prada_ignores_one_rare_far_item_but_not_a_lump_of_synthetic_steps() -> None:
    from collections import deque

    from bastion.detect.extraction import ExtractionDetector, ExtractionOptions

    rng = np.random.default_rng(0)
    prof = fit_profile(rng.normal(size=(300, 6)), dim=6, n_cells=8)
    det = ExtractionDetector(ExtractionOptions(profile="-"), profile=prof)
    natural = np.r_[rng.normal(3.0, 0.8, 50), 22.0]  # one item far from everything else
    assert shapiro_w(natural) < 0.45 < 0.9 < det.prada_statistic(deque(natural))
    # 90 small synthetic steps and 10 natural distances: the natural ones are far out of the
    # lump, and stay in (at most 5 % are left out), so the bend shows
    lump = np.r_[rng.normal(0.8, 0.05, 90), rng.normal(3.5, 0.8, 10)]
    assert det.prada_statistic(deque(lump)) < det.opts.prada_w


@pytest.mark.parametrize("n", [3, 4, 7, 30, 501])
def test_quartiles_of_a_sorted_sample_match_numpy(n: int) -> None:
    from bastion.detect.extraction import _quartile

    d = np.sort(np.random.default_rng(n).exponential(size=n))
    got = [_quartile(d, 0.25), _quartile(d, 0.75)]
    np.testing.assert_allclose(got, np.percentile(d, (25.0, 75.0)), rtol=1e-12)


def test_the_prada_sample_keeps_the_newest_distances_in_order() -> None:
    from collections import deque

    from bastion.detect.extraction import _Sample

    rng = np.random.default_rng(5)
    sample, want = _Sample(7), deque[float](maxlen=7)
    for m in (3, 2, 5, 1, 9, 4):  # wraps, and one batch longer than the sample
        values = rng.random(m)
        sample.extend(values)
        want.extend(values.tolist())
        assert len(sample) == len(want)
        np.testing.assert_array_equal(sample.ordered(), list(want))
        assert sorted(sample.held().tolist()) == sorted(want)
