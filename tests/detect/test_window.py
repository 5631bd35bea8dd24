"""The campaign window holds distinct inputs: re-sending an input neither scores nor dilutes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bastion.detect.profile import Profile
from bastion.detect.similarity import SimilarityDetector, SimilarityOptions
from bastion.detect.streams import Task
from bastion.guard.policies.detection import Observation
from bastion.guard.request import Prediction
from bastion.guard.stores.memory import MemoryStore


def _swarm(task: Task, n: int, seed: int = 0) -> list[np.ndarray]:
    """Square-like: candidates around one point, each followed by two re-sends of the current
    best (as ART's Square does), the best moving when a candidate is kept."""
    rng = np.random.default_rng(seed)
    best = task.x_test[0].astype(np.float64)
    span = task.upper - task.lower
    out = []
    for _ in range(n):
        sign = rng.choice([-1.0, 1.0], size=best.shape)
        step = 0.3 * span * sign * (rng.random(best.shape) < 0.6)
        cand = np.clip(best + step, task.lower, task.upper)
        out.append(cand)
        if rng.random() < 0.3:
            best = cand
        out += [best, best]
    return out


def _first_evidence(det: SimilarityDetector, task: Task, stream: list[np.ndarray]) -> int | None:
    """The number of distinct inputs sent when evidence was first released."""
    store, seen = MemoryStore(), set[bytes]()
    for i, x in enumerate(stream):
        seen.add(x.tobytes())
        pred = Prediction.from_scores(task.predict_proba(x[None]))
        ev = det.observe(Observation("p", {"x": x[None]}, pred, 1000.0 + i), store)
        if ev is not None:
            return len(seen)
    return None


def test_re_sends_of_the_current_best_do_not_delay_detection(
    cancer: Task, cancer_profile: Path
) -> None:
    profile = Profile.load(cancer_profile)
    stream = _swarm(cancer, 40)
    firsts: dict[bytes, np.ndarray] = {}
    for x in stream:
        firsts.setdefault(x.tobytes(), x)
    new_only = list(firsts.values())  # the same inputs in the same order, each sent once

    def det(distinct: bool) -> SimilarityDetector:
        opts = SimilarityOptions(profile="-", distinct_window=distinct, persist=False)
        return SimilarityDetector(opts, profile=profile)

    alone = _first_evidence(det(True), cancer, new_only)
    assert alone is not None
    # (re-sends can only take neighbour slots from distinct inputs, never window slots)
    with_re_sends = _first_evidence(det(True), cancer, stream)
    assert with_re_sends is not None and with_re_sends <= alone
    # the old window (the last 10 queries, re-sends included) needed more distinct inputs
    diluted = _first_evidence(det(False), cancer, stream)
    assert diluted is None or diluted > alone
