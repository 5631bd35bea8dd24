"""The off-manifold share counts distinct inputs: a user who keeps re-sending and editing one
unusual item is not spraying noise; an extractor's random queries still are."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bastion.detect.extraction import ExtractionDetector, ExtractionOptions
from bastion.detect.profile import Profile
from bastion.detect.streams import Task, _edit
from tests.detect.test_coverage import _failed


def _far(profile: Profile, rows: np.ndarray) -> np.ndarray:
    v = profile.encode(rows)
    d2 = ((v[:, None, :] - profile.cells[None]) ** 2).sum(-1).min(1)
    return np.asarray(d2 > profile.cell_radius**2)


def test_one_unusual_item_re_sent_and_edited_is_not_off_manifold(
    cancer: Task, cancer_profile: Path
) -> None:
    """On cancer's evaluation, 5 of the 7 benign principals flagged of 13,000 were flagged by
    this share alone: held-out items far from the fit data's cells, re-sent and edited many
    times, made more than 30 % of their queries."""
    profile = Profile.load(cancer_profile)
    det = ExtractionDetector(ExtractionOptions(profile="-", persist=False), profile=profile)
    rng = np.random.default_rng(0)
    far = _far(profile, cancer.x_test)
    assert 0 < far.sum() <= 5  # a few held-out items lie far from all the fit data's cells
    odd = cancer.x_test[int(np.argmax(far))]
    usual = cancer.x_test[~far][:20]
    rows = [odd]
    for i in range(40):
        rows.append(usual[i // 2] if i % 2 else (odd if i % 4 == 0 else _edit(cancer, odd, rng)))
    stream = np.asarray(rows)
    far = _far(profile, stream)
    assert far[0] and far.mean() > 0.4  # every copy and edit of the item is off-manifold
    assert "off_manifold" not in _failed(det, cancer, "user", stream)
    # a random-query extractor: every query a new point far from all benign data
    noise = cancer.lower + rng.random((40, 30)) * (cancer.upper - cancer.lower)
    assert _far(profile, noise).mean() > 0.9
    assert "off_manifold" in _failed(det, cancer, "thief", noise)
