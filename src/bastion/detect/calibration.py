"""Choosing detector thresholds from benign traffic that the evaluation never sees.

The trigger trades detection delay for false positives, so it is set from
benign data, not from the attacks or the evaluation streams: benign streams
(interests, repeats, edits, bursts; see `streams`) are drawn from the data
the profile was fitted on, which is disjoint from the items the evaluation's
benign users send, and each principal's highest campaign-window total is
recorded with the trigger out of reach. A principal is flagged at trigger `t`
exactly when that peak reaches `t`, so one pass gives the false-positive rate
of every trigger, and the smallest trigger meeting a target rate. The same
holds for PRADA's alarm level: a principal earns the first action level from
two failed checks, so it is flagged at level `w` exactly when the second
lowest W of its checks is below `w`. `flagged` runs a whole configuration
through a guard on such streams: the end-to-end false-positive rate of the
detectors together, with their actions; `responses` also how many principals each action
level of the graded response reaches.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.detect.arena import Arena, replay
from bastion.detect.extraction import ExtractionDetector, ExtractionOptions
from bastion.detect.profile import Profile
from bastion.detect.similarity import SimilarityDetector, SimilarityOptions
from bastion.detect.streams import Task, benign_streams
from bastion.guard.policies.detection import Observation
from bastion.guard.request import Prediction
from bastion.guard.stores.memory import MemoryStore

__all__ = [
    "campaign_peaks",
    "flagged",
    "level_for",
    "prada_levels",
    "responses",
    "trigger_for",
]

Peaks = npt.NDArray[np.float64]


def development(task: Task) -> Task:
    """The task with its benign users drawing from the fit data instead of the test data."""
    labels = task.predict_proba(task.x_fit).argmax(1).astype(np.int64)
    return dataclasses.replace(task, x_test=task.x_fit, y_test=labels)


def campaign_peaks(task: Task, profile: Profile, n: int, seed: int = 101, **options: Any) -> Peaks:
    """Each calibration principal's highest window total (`options`: SimilarityOptions)."""
    fit_task = development(task)
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


def prada_levels(task: Task, profile: Profile, n: int, seed: int = 101, **options: Any) -> Peaks:
    """Each calibration principal's second lowest PRADA W over its checks (1 with fewer than
    two checks): the alarm levels above it flag the principal (`options`: ExtractionOptions)."""
    opts = ExtractionOptions(profile="-", persist=False, **options)
    det = ExtractionDetector(opts, profile=profile)
    store = MemoryStore()
    out = []
    for s in benign_streams(development(task), n, seed=seed):
        pred = task.predict_proba(s.queries).argmax(1)
        ws = [1.0, 1.0]
        for q, y in zip(s.queries, pred, strict=True):
            det.observe(Observation(s.principal, {"x": q[None]}, Prediction(y[None]), 0.0), store)
            st = det.states[s.principal]
            if st.n >= opts.min_queries and st.n % opts.check_every == 0:
                det.verdict(st)  # settles the pending queries
                if len(st.dist) >= opts.min_queries:
                    ws.append(det.prada_statistic(st.dist))
        out.append(sorted(ws)[1])
        del det.states[s.principal]
    return np.asarray(out, dtype=np.float64)


def level_for(levels: Peaks, rate: float, step: float = 0.05) -> float:
    """The highest alarm level (on a grid of `step`) that flags at most `rate` of them."""
    allowed = int(np.floor(rate * len(levels)))
    low = np.sort(levels)
    bound = float(low[allowed]) if allowed < len(low) else 1.0  # must stay at or below this
    return round(float(np.floor(bound / step - 1e-9)) * step, 10)


def flagged(task: Task, detectors: list[dict[str, Any]], n: int, seed: int = 101) -> list[str]:
    """The calibration principals a guard with these detector entries (as in guard.yaml, the
    evaluation's actions) brings to its first action level."""
    return responses(task, detectors, n, seed)[0]


def responses(
    task: Task, detectors: list[dict[str, Any]], n: int, seed: int = 101
) -> tuple[list[str], dict[str, int], list[float]]:
    """What the evaluation's actions do to the calibration principals: those brought to the
    first action level, how many reached each action's level, and the highest evidence totals
    (the levels of the graded response are chosen from these: see docs/detect.md)."""
    arena = Arena(task, detectors)
    try:
        streams = list(benign_streams(development(task), n, seed=seed))
        hit = replay(arena, streams)[0]
        names = [s.principal for s in streams]
        totals = sorted((arena.evidence(p) for p in names), reverse=True)
        return hit, arena.reached(names), [round(t, 2) for t in totals[:5]]
    finally:
        arena.close()
