"""The trigger is chosen from benign streams drawn from the fit data, never the evaluation's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bastion.detect.calibration import campaign_peaks, flagged, level_for, prada_levels, trigger_for
from bastion.detect.profile import Profile
from bastion.detect.streams import Task


def test_trigger_for_flags_at_most_the_allowed_share() -> None:
    peaks = np.array([0.3, 1.0, 2.4, 2.65, 3.1])
    assert trigger_for(peaks, 0.2) == 2.7  # one of five may cross: 3.1 does, 2.65 must not
    assert trigger_for(peaks, 0.0) == 3.2
    t = trigger_for(peaks, 0.4)
    assert t == 2.5 and int((peaks >= t).sum()) == 2


def test_calibration_peaks_of_benign_rows_stay_below_the_default_trigger(
    cancer: Task, cancer_profile: Path
) -> None:
    peaks = campaign_peaks(cancer, Profile.load(cancer_profile), 60, seed=7)
    assert peaks.shape == (60,) and peaks.max() > 0  # edits and bursts do score
    assert float(np.mean(peaks >= 2.4)) <= 1 / 60


def test_prada_levels_of_benign_rows_stay_above_the_default_alarm_level(
    cancer: Task, cancer_profile: Path
) -> None:
    levels = prada_levels(cancer, Profile.load(cancer_profile), 40, seed=7)
    assert levels.shape == (40,) and levels.min() > 0.6
    assert level_for(np.array([0.3, 0.62, 0.8, 0.9]), 0.25) == 0.6  # 0.3 may fail, 0.62 not
    assert level_for(np.array([0.3, 0.62, 0.8, 0.9]), 0.0) == 0.25


def test_the_rows_configuration_flags_no_benign_fit_data_principal(
    cancer: Task, cancer_profile: Path
) -> None:
    from bastion.detect.configurations import detectors

    entries = detectors("rows+extraction", cancer_profile)
    assert flagged(cancer, entries, 30, seed=11) == []
