"""A user's edits of an item on the decision boundary are not a search for the boundary.

Light edits of such an item cross the boundary again and again, and each crossing used to
score `boundary_hugging` as if it were a step of a decision-based attack: an item and a
burst of five edits was flagged. Edits beside earlier edits of the same item (a star)
now say that only once, while a bisection's midpoint, which lies between its parent and
the other end of its interval, still hugs the boundary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bastion.detect.arena import Arena, PrincipalTarget
from bastion.detect.history import Entry, Ring
from bastion.detect.provenance import Weights, link
from bastion.detect.streams import Task, _edit
from tests.detect.conftest import rows_similarity


def _on_the_boundary(task: Task, i: int) -> np.ndarray:
    """Fit item `i` moved onto the decision boundary: bisected towards its nearest fit item
    of the other class, rounded as the streams round rows."""
    p = task.predict_proba(task.x_fit)[:, 1] > 0.5
    others = np.flatnonzero(p != p[i])
    far = task.x_fit[others[np.argmin(np.linalg.norm(task.x_fit[others] - task.x_fit[i], axis=1))]]
    near = task.x_fit[i]
    for _ in range(30):
        mid = (near + far) / 2
        if (task.predict_proba(mid[None])[0, 1] > 0.5) == p[i]:
            near = mid
        else:
            far = mid
    return np.asarray(np.round(near, 3))


def test_an_item_on_the_boundary_and_a_burst_of_edits_of_it_is_not_flagged(
    cancer: Task, cancer_profile: Path
) -> None:
    proba = cancer.predict_proba(cancer.x_fit)[:, 1]
    tried = 0
    for i in np.argsort(np.abs(proba - 0.5))[:8]:  # the fit items nearest the boundary
        x0 = _on_the_boundary(cancer, int(i))
        rng = np.random.default_rng(int(i))
        edits = [_edit(cancer, x0, rng) for _ in range(5)]  # a burst, as the streams send
        label = cancer.predict_proba(x0[None]).argmax()
        if int((cancer.predict_proba(np.array(edits)).argmax(1) != label).sum()) < 3:
            continue  # (the edits must cross the boundary several times)
        tried += 1
        arena = Arena(cancer, [rows_similarity(cancer_profile)])
        user = PrincipalTarget(arena, f"user-{i}")
        for q in [x0, *edits]:
            user.query(q[None])
        assert user.tally.detected_at is None, f"fit item {i}"
        assert arena.guard.store.get_state(f"user-{i}").evidence.get("similarity", 0.0) == 0.0
    assert tried >= 2, "no boundary item whose edits cross the boundary: the test tests nothing"


def test_a_bisection_midpoint_that_became_a_sibling_still_hugs_the_boundary() -> None:
    """Features that are not linear in the input (or rounding) leave a bisection's midpoint
    slightly nearer one end than the other: it becomes the sibling of the other end instead
    of its child, but it lies on the segment between them, so its flip still counts."""
    ring = Ring(16, 2)
    start = np.array([0.0, 0.0], np.float32)
    ring.add(Entry(start, 0.0, 1, 0, 0, 0.0, root=5))  # the item (depth 0)
    ring.add(Entry(np.array([0.8, 0.0], np.float32), 0.0, 1, 1, 1, 0.8, root=5))  # an end
    mid = np.array([0.39, 0.01], np.float32)  # nearer the item than the end: a sibling
    own = ring.nearest(mid, 8, radius=1.0, now=1.0)
    ln = link(own, own, 1, 0, 1.0, Weights())
    assert ln.depth == 1 and "boundary_hugging" in ln.patterns
    # ... where an edit beside the first, in another direction, does not
    edit = np.array([0.05, 0.78], np.float32)
    own = ring.nearest(edit, 8, radius=1.5, now=1.0)
    assert own.dist.size == 2  # the item and the end are both near
    ln = link(own, own, 1, 0, 1.5, Weights())
    assert ln.depth == 1 and "boundary_hugging" not in ln.patterns
    ln = link(own, own, 1, 0, 1.5, Weights(flip_beside=0.3))  # the weight restores it
    assert "boundary_hugging" in ln.patterns


def test_edits_under_suspicion_still_hug_the_boundary() -> None:
    """Once the principal is under suspicion, every flip counts again: a decision-based
    attack's samples around its current point are siblings too."""
    ring = Ring(16, 2)
    ring.add(Entry(np.array([0.0, 0.0], np.float32), 0.0, 1, 0, 0, 0.0, True, root=5))
    ring.add(Entry(np.array([0.8, 0.0], np.float32), 0.0, 1, 1, 1, 0.8, True, root=5))
    edit = np.array([0.05, 0.78], np.float32)
    own = ring.nearest(edit, 8, radius=1.5, now=1.0)
    assert "boundary_hugging" in link(own, own, 1, 0, 1.5, Weights()).patterns
