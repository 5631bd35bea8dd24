"""Query provenance: which earlier query each new one descends from, and what the lineage says.

A single query proves nothing; an attack campaign has a shape. Decision-based
attacks walk towards the decision boundary and then sample around it (labels
flip among near neighbours), score-based attacks build long descent chains of
tiny steps from one seed, and a Sybil attacker continues a chain another
account started. Benign users repeat and lightly vary their own inputs, which
makes star-shaped, shallow, single-label clusters. Each query is linked to its
nearest earlier neighbour (its parent) and scored on that shape; a principal's
evidence is the score of its recent window, so randomising one query does not
hide the lineage it sits in.

The window judges one lineage at a time: a query counts the recent scores of
its own lineage (the queries descending from the same first query), plus the
signals that need no lineage (off-manifold starts, a swarm of recent queries
around one point). A benign user's window mixes short, unrelated lineages —
an item and a few edits of it, then another item — whose small scores used to
add up; an attack's window is one lineage, so it crosses the trigger as fast
as before.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from bastion.detect.history import Neighbours

__all__ = ["Campaign", "Link", "Weights", "link"]


@dataclass(frozen=True)
class Weights:
    """How much each pattern of a linked query counts (one query scores at most ~1.5).

    Chosen, with the window of 10 queries, on development data only: benign streams drawn
    from the profile's fit data and attacks on fit-data victims, none of which the
    evaluation uses (see `calibration` and docs/detect.md)."""

    repeat: float = 0.0  # an identical earlier query (retries are normal)
    linked: float = 0.1
    deep: float = 0.25  # parent chain at least `deep_at` long
    deep_at: int = 4
    flip: float = 0.3  # a near neighbour carries another label: boundary hugging
    # ... when the query is only an edit beside earlier edits of one item (as deep as they
    # are, not between its parent and one of them, the parent sent before any suspicion): a
    # user's edits of an item on the decision boundary, which cross it again and again
    flip_beside: float = 0.0
    crowd: float = 0.3  # at least `crowd_at` distinct own queries within the radius
    crowd_at: int = 6
    shrink: float = 0.2  # the step to the parent is much smaller than the parent's own step
    sybil: float = 0.5  # the parent was sent by another principal already under suspicion
    off_manifold: float = 0.7  # an unlinked query far from all benign data
    swarm: float = 0.45  # at least `swarm_at` recent distinct queries around it, not edits of it
    swarm_at: int = 3
    # per swarm member beyond `swarm_at`: Square's L∞ squares on images land 1-3 radii from
    # the point they perturb, so the swarm is most of what its first queries leave behind
    swarm_each: float = 0.1
    # a campaign moved accounts (see `sybils`): `moved_at` of a principal's recent distinct
    # queries, each unexplained and with at least `moved_near` queries of another, caught
    # principal within twice the near-radius (0 turns the test off)
    moved_at: int = 2
    moved_near: int = 3
    # a sign step (see `steps`): at least `sign_step_at` raw features moved by exactly one
    # step size from a recent input, as an L∞ attack's vertices do (0 turns the test off)
    sign_step: float = 0.0
    sign_step_at: int = 3


class Link(NamedTuple):
    depth: int
    step: float
    score: float
    patterns: tuple[str, ...]
    root: int = 0  # the parent's lineage; 0 when the query starts a new one


_TIE = 1e-3  # relative difference of two distances that float32 features cannot resolve


def _parent(own: Neighbours) -> int:
    """Which of the own neighbours (closest first) a query descends from: the nearest, and
    among neighbours equally near, the deepest. A bisection's midpoint lies exactly halfway
    between the last midpoint and an end point; it continues the search, not the end point's
    lineage (which tie float32 rounding broke used to be chance)."""
    if own.dist.size < 2 or own.dist[1] > own.dist[0] * (1 + _TIE):
        return 0
    tied = own.dist <= own.dist[0] * (1 + _TIE)
    return int(np.argmax(np.where(tied, own.depth, -1)))


_BETWEEN = 1.25  # d(q, parent) + d(q, sibling) within this × d(parent, sibling): on the segment


def _beside(own: Neighbours, j: int, depth: int, step: float, root: int) -> bool:
    """Whether a query that descends from own neighbour `j` is an edit beside earlier edits
    of the same item rather than a step of a search: earlier queries of its lineage within
    the radius are exactly as deep (siblings; none deeper), it does not lie between its
    parent and any of them, and the parent was sent before any suspicion.

    A walk to the boundary goes deeper with every step. A bisection's midpoint lies on the
    segment between its parent and the other end of the interval: when float rounding (or
    the features' contrast normalisation) makes the two ends not quite equidistant, it
    becomes a sibling of that end instead of its child, and d(q, parent) + d(q, sibling)
    still equals the sibling's own step. A user's light edits of one item point in random
    directions, so two of them, each about r from the item, lie about r·√2 apart and that
    sum is about 2.4 times the sibling's step. When the item lies on the decision boundary
    the label flips on many of the edits: the first flip in such a star says that the item
    lies on the boundary, the following ones say it again."""
    if own.suspect[j]:
        return False
    # (k neighbours at most, a handful: plain Python beats numpy's per-call overhead here)
    siblings = 0
    for r, d, dist, s in zip(
        own.root.tolist(), own.depth.tolist(), own.dist.tolist(), own.step.tolist(), strict=True
    ):
        if r != root or d < depth:
            continue
        if d > depth:
            return False  # the lineage went deeper here already: maybe a search's way back
        if step + dist <= _BETWEEN * s:
            return False  # on the segment between its parent and this sibling: a bisection
        siblings += 1
    return siblings > 0  # none: the first edit of its parent, or a step deeper


def link(
    own: Neighbours,
    glob: Neighbours,
    me: int,
    label: int,
    radius: float,
    w: Weights,
) -> Link:
    """Score one query from its own and global neighbours (both closest first)."""
    exact = radius * 1e-3
    own_hit = own.dist.size > 0 and own.dist[0] < radius
    glob_hit = False
    if glob.dist.size:  # (no global neighbours is the common case: skip the bookkeeping)
        others = glob.owner != me
        g_dist, g_depth = glob.dist[others], glob.depth[others]
        g_step, g_label, g_root = glob.step[others], glob.label[others], glob.root[others]
        # another principal's query is a parent only when it is not an identical input
        # (popular items are sent by many users) and its sender was already under suspicion:
        # benign users editing the same popular item must not chain into one another's lineage
        g_ok = (g_dist < radius) & (g_dist > exact) & glob.suspect[others]
        g_ok &= g_depth >= w.deep_at - 1  # ... and deep in a lineage (no cascades of retries)
        # an input another principal sent before any suspicion is a known item (a catalogue
        # entry, the very item an attack started from): sending it again starts nothing new
        # and continues nobody's walk, however near the suspect queries around it lie
        known = bool(((g_dist <= exact) & ~glob.suspect[others]).any())
        glob_hit = not known and bool(g_ok.any())
    if not own_hit and not glob_hit:
        return Link(0, 0.0, 0.0, ())
    # a query near a catalogue item the principal sent is its edit of that item: it continues
    # the principal's own lineage, however near an attack's queries around the item lie (an
    # own parent that is a step of the principal's own walk still gives way to a nearer
    # suspect query of another: an attack interleaved over several keys stays one lineage)
    if glob_hit and own_hit and bool(own.known[own.dist < radius].any()):
        glob_hit = False
    use_glob = glob_hit and (not own_hit or float(g_dist[g_ok][0]) < float(own.dist[0]))
    if use_glob:
        j = int(np.flatnonzero(g_ok)[0])
        step, depth, pstep = float(g_dist[j]), int(g_depth[j]) + 1, float(g_step[j])
        root = int(g_root[j])
    else:
        j = _parent(own)
        step, depth, pstep = float(own.dist[j]), int(own.depth[j]) + 1, float(own.step[j])
        root = int(own.root[j])
    if step <= exact:  # a verbatim repeat adds nothing to the lineage
        return Link(depth - 1, pstep, w.repeat, ("repeat",), root)
    score, pats = w.linked, ["linked"]
    if depth >= w.deep_at:
        score, pats = score + w.deep, [*pats, "descent_chain"]
    flips = bool((own.label[own.dist < radius] != label).any())
    if glob_hit:
        flips = flips or bool((g_label[g_ok] != label).any())
    flip = w.flip if flips else 0.0
    if flips and not glob_hit and _beside(own, j, depth, step, root):
        flip = w.flip_beside
    if flip:
        score, pats = score + flip, [*pats, "boundary_hugging"]
    if own.within >= w.crowd_at:
        score, pats = score + w.crowd, [*pats, "crowding"]
    # (a bisection halves its step exactly: half counts as shrinking, rounding aside)
    if pstep > 0 and step > exact and step <= 0.5 * pstep * (1 + _TIE) and depth >= 2:
        score, pats = score + w.shrink, [*pats, "shrinking_steps"]
    if use_glob:
        score, pats = score + w.sybil, [*pats, "cross_principal"]
    return Link(depth, step, score, tuple(pats), root)


class Campaign:
    """A principal's recent window of scores: evidence starts when the scores of the newest
    query's lineage in the window, plus the window's lineage-free scores, cross `trigger`;
    from then on each suspicious query adds its own score. Callers that know no lineages
    (root 0 throughout) get the plain window sum."""

    def __init__(self, window: int, trigger: float) -> None:
        self.recent: deque[tuple[int, float, float]] = deque(maxlen=window)  # root, score, free
        self.trigger = trigger
        self.active = False
        self.peak = 0.0  # the highest window total seen (calibration reads it)

    def add(self, score: float, root: int = 0, free: float = 0.0) -> float:
        """Record a query's lineage score and lineage-free score; return the evidence it
        releases (0 while below the trigger)."""
        self.recent.append((root, score, free))
        if self.active:
            return score + free
        total = float(sum(f + (s if r == root else 0.0) for r, s, f in self.recent))
        self.peak = max(self.peak, total)
        if total >= self.trigger:
            self.active = True
            return total
        return 0.0

    def inherit(self, evidence: float) -> float:
        """A campaign moved here from another account: it is active from now on, and the
        evidence it had gathered there is released here at once."""
        self.active = True
        self.peak = max(self.peak, evidence)
        return evidence

    def absorb(self, score: float, suspect: bool, root: int = 0, free: float = 0.0) -> None:
        """Take in a query another replica judged: it fills the window like a local one, and
        if that replica had already found the campaign, so has this one. It releases
        nothing here — that replica added its evidence to the shared store already."""
        self.recent.append((root, score, free))
        self.active = self.active or suspect
