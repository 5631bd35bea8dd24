"""Choosing the similarity trigger from benign traffic that the evaluation never sees.

The trigger trades detection delay for false positives, so it is set from
benign data, not from the attacks or the evaluation streams: benign streams
(interests, repeats, edits, bursts; see `streams`) are drawn from the data
the profile was fitted on, which is disjoint from the items the evaluation's
benign users send, and each principal's highest campaign-window total is
recorded with the trigger out of reach. A principal is flagged at trigger `t`
exactly when that peak reaches `t`, so one pass gives the false-positive rate
of every trigger, and the smallest trigger meeting a target rate.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.detect.profile import Profile
from bastion.detect.similarity import SimilarityDetector, SimilarityOptions
from bastion.detect.streams import Task, benign_streams
from bastion.guard.policies.detection import Observation
from bastion.guard.request import Prediction
from bastion.guard.stores.memory import MemoryStore

__all__ = ["campaign_peaks", "trigger_for"]

Peaks = npt.NDArray[np.float64]


def campaign_peaks(task: Task, profile: Profile, n: int, seed: int = 101, **options: Any) -> Peaks:
    """Each calibration principal's highest window total (`options`: SimilarityOptions)."""
    labels = task.predict_proba(task.x_fit).argmax(1).astype(np.int64)
    fit_task = dataclasses.replace(task, x_test=task.x_fit, y_test=labels)
    opts = SimilarityOptions(profile="-", trigger=float("inf"), persist=False, **options)
    det = SimilarityDetector(opts, profile=profile)
    store = MemoryStore()
    peaks = []
    for s in benign_streams(fit_task, n, seed=seed):
        pred = task.predict_proba(s.queries).argmax(1)
        for q, y in zip(s.queries, pred, strict=True):
            det.observe(Observation(s.principal, {"x": q[None]}, Prediction(y[None]), 0.0), store)
        peaks.append(det.tracks[s.principal].campaign.peak)
    return np.asarray(peaks, dtype=np.float64)


def trigger_for(peaks: Peaks, rate: float, step: float = 0.1) -> float:
    """The smallest trigger (on a grid of `step`) that flags at most `rate` of the principals."""
    allowed = int(np.floor(rate * len(peaks)))
    top = np.sort(peaks)[::-1]
    bound = float(top[allowed]) if allowed < len(top) else 0.0  # must stay above this peak
    return round((float(np.floor(bound / step + 1e-9)) + 1.0) * step, 10)
