"""The coverage test's label entropy is judged against every class the model has, not only the
classes one principal happened to be told."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bastion.detect.calibration import development
from bastion.detect.extraction import ExtractionDetector, ExtractionOptions
from bastion.detect.profile import Profile
from bastion.detect.streams import Task, benign_streams
from bastion.guard.policies.detection import Observation
from bastion.guard.request import Prediction
from bastion.guard.stores.memory import MemoryStore


@pytest.fixture(scope="module")
def rows8(rows8_task: Task, rows8_profile: Path) -> tuple[Task, Profile]:
    return rows8_task, Profile.load(rows8_profile)


def _failed(det: ExtractionDetector, task: Task, principal: str, rows: np.ndarray) -> set[str]:
    store, failed = MemoryStore(), set[str]()
    labels = task.predict_proba(rows).argmax(1)
    for q, y in zip(rows, labels, strict=True):
        got = det.observe(Observation(principal, {"x": q[None]}, Prediction(y[None]), 0.0), store)
        failed |= set(got.kind.split("+")) if got else set()
    return failed


def test_a_user_told_most_classes_unevenly_is_not_sweeping_them_all(
    rows8: tuple[Task, Profile],
) -> None:
    """Two of 1,000 benign calibration principals on rows8's fit data (a few interests, and
    a fifth of their items from anywhere) were told five of the eight classes in their
    first 30 queries, one of them rarely. Against the five they had seen, their labels'
    entropy was 0.90 and 0.94 of the maximum, over the test's 0.9, and coverage failed at
    the first check; against the eight the model has, it is 0.70 and 0.73."""
    task, profile = rows8
    fit = development(task)
    det = ExtractionDetector(ExtractionOptions(profile="-", persist=False), profile=profile)
    # the model has answered every class before (a catalogue browser, one item of each)
    browse = np.array([fit.x_test[np.flatnonzero(fit.y_test == c)[0]] for c in range(8)])
    assert _failed(det, task, "browser", browse) == set()
    streams = {s.principal: s for s in benign_streams(fit, 830, seed=101)}
    for name in ("user-00214", "user-00829"):
        rows = streams[name].queries[:30]
        assert len(set(task.predict_proba(rows).argmax(1).tolist())) == 5  # (as described)
        assert "coverage" not in _failed(det, task, name, rows), name


def test_a_natural_data_copier_still_fails_coverage(rows8: tuple[Task, Profile]) -> None:
    """A Knockoff-style copier sends natural items from everywhere: it is told every class
    about evenly, and fails coverage at its first check (the 30th query)."""
    task, profile = rows8
    det = ExtractionDetector(ExtractionOptions(profile="-", persist=False), profile=profile)
    rng = np.random.default_rng(1)
    rows = task.x_test[rng.permutation(len(task.x_test))[:30]]
    assert "coverage" in _failed(det, task, "copier", rows)
