"""The benign profile: fitted, saved, loaded as plain JSON; its folded encoder is exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bastion.detect.profile import Profile, fit_profile
from bastion.detect.streams import Task
from bastion.errors import ConfigError, UsageError


def test_profile_round_trips_and_folded_encoder_matches_the_explicit_pipeline(
    digits: Task, digits_profile: Path
) -> None:
    prof = Profile.load(digits_profile)
    x = digits.x_test[:5]
    explicit = ((prof.pooled(x) - prof.mean) / prof.scale) @ prof.components
    np.testing.assert_allclose(prof.encode(x), explicit, rtol=1e-3, atol=1e-3)
    assert prof.dim == 32 and prof.radius > 0 and prof.cells.shape == (64, 32)


def test_contrast_changes_barely_move_an_image_but_another_image_is_far(
    digits: Task, digits_profile: Path
) -> None:
    prof = Profile.load(digits_profile)
    x = digits.x_test[0]
    brighter = np.clip(x * 1.1 + 0.02, 0, 1)
    d_same = float(np.linalg.norm(prof.encode(x) - prof.encode(brighter)))
    d_other = float(np.linalg.norm(prof.encode(x) - prof.encode(digits.x_test[1])))
    assert d_same < prof.radius < d_other


def test_bad_profile_and_bad_data_are_user_errors(tmp_path: Path) -> None:
    bad = tmp_path / "p.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(ConfigError, match="not a bastion detector profile"):
        Profile.load(bad)
    with pytest.raises(ConfigError, match="cannot read detector profile"):
        Profile.load(tmp_path / "missing.json")
    with pytest.raises(UsageError, match="at least 10 benign rows"):
        fit_profile(np.zeros((3, 4)))
