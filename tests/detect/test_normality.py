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
