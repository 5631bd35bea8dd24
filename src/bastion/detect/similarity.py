"""Feature-space neighbour detection with provenance, per principal and across principals.

Each answered query is encoded with the benign profile, searched exactly
against the principal's own bounded history and a global history shared by all
principals, linked to its parent (see `provenance`), and remembered. Evidence
is released only once a principal's recent window looks like a campaign, so a
benign user's repeats and retries stay below the line while an attack's
lineage crosses it within a few queries — and a campaign continued from a new
account inherits its lineage through the global history.

Histories and campaign windows are shared by all guard replicas through the
store's logs: before judging, a replica pulls the queries the others answered
since its last look, so a campaign spread over replicas is judged on all of
its queries, as on one replica.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections import OrderedDict, deque
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bastion.detect.feeds import Feed, pull, push
from bastion.detect.history import Entry, Recent, Ring, owner_id
from bastion.detect.profile import Profile
from bastion.detect.provenance import Campaign, Weights, link
from bastion.detect.steps import SignSteps
from bastion.detect.sybils import Relay
from bastion.guard.policies.detection import Evidence, Observation
from bastion.guard.stores.base import Store

__all__ = ["SimilarityDetector", "load_profile"]


class SimilarityOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str = Field(description="benign profile JSON from `bastion detect fit`")
    radius_scale: float = Field(default=1.0, gt=0, description="multiplies the profile radius")
    history: int = Field(default=10_000, ge=16, description="queries remembered per principal")
    global_history: int = Field(default=10_000, ge=16, description="queries remembered in all")
    global_index: Literal["exact", "hnsw"] = Field(
        default="exact",
        description="how the global history is searched: exact (cheaper up to a few tens of "
        "thousands of queries) or hnsw (faiss graphs, the `ann` extra, for a larger history)",
    )
    ttl_s: float | None = Field(default=None, gt=0, description="forget queries older than this")
    k: int = Field(default=8, ge=1, le=64)
    window: int = Field(default=10, ge=2, description="recent queries judged as one campaign")
    trigger: float = Field(default=2.4, gt=0, description="window score that starts evidence")
    max_principals: int = Field(default=10_000, ge=1, description="histories kept in memory")
    off_manifold: float = Field(
        default=1.25,
        gt=0,
        description="× the profile's cell radius: a query this far from "
        "all benign data is off-manifold (random starts, noise probes)",
    )
    spread_scale: float = Field(
        default=1.0,
        gt=0,
        description="multiplies the profile's swarm radius (recent queries around one point)",
    )
    weights: dict[str, float] = Field(
        default_factory=dict,
        description="per-pattern scores overriding the defaults (see provenance.Weights), "
        "e.g. {linked: 0.15, flip: 0.4}",
    )
    distinct_window: bool = Field(
        default=True,
        description="the campaign window and the swarm count hold the last `window` distinct "
        "inputs: a verbatim repeat neither scores nor pushes evidence out of the window",
    )
    moved_now: bool = Field(
        default=False,
        description="a campaign that moved to this account (`moved_account`) is degraded "
        "from the answer that showed it, not from the next one",
    )
    persist: bool = Field(default=True, description="share histories via the store (replicas)")
    cross_principal: bool = True

    @field_validator("weights")
    @classmethod
    def _known_weights(cls, v: dict[str, float]) -> dict[str, float]:
        known = {f.name for f in dataclasses.fields(Weights)}
        unknown = sorted(set(v) - known)
        if unknown:
            raise ValueError(f"unknown weights {unknown}; known: {sorted(known)}")
        return v


_COUNTS = frozenset({"deep_at", "crowd_at", "swarm_at", "moved_at", "moved_near", "sign_step_at"})


def _weights(overrides: dict[str, float]) -> Weights:
    given: dict[str, Any] = {k: int(v) if k in _COUNTS else float(v) for k, v in overrides.items()}
    return Weights(**given)


def load_profile(ref: str | Profile, env: Any) -> Profile:
    if isinstance(ref, Profile):
        return ref
    resolve = getattr(getattr(env, "config", None), "resolve", None)
    return Profile.load(resolve(ref) if resolve else ref)


_SIGN_MEMORY = 4  # raw inputs kept per principal for the sign-step test


class _Track:
    """What one principal's queries left behind: history, campaign window, log position."""

    def __init__(
        self, ring: Ring, campaign: Campaign, feed: Feed, recent: Recent, steps: SignSteps | None
    ) -> None:
        self.ring, self.campaign, self.feed = ring, campaign, feed
        self.recent = recent  # the last `window` distinct inputs (the swarm is counted there)
        self.steps = steps  # the last raw inputs, when sign steps are scored
        # per window query: whether it landed in another principal's campaign (see `sybils`),
        # and the own earlier query it hangs from (`Relay.anchor`; None: none or unknown)
        self.swarm_hits: deque[tuple[bool, int | None]] = deque(maxlen=campaign.recent.maxlen)

    @property
    def moved(self) -> list[bool]:
        return [m for m, _ in self.swarm_hits]

    def items_moved(self) -> int:
        """The window's queries in a campaign's swarm, a query's edits hanging from one own
        query counted once (one not hanging from any, or judged by another replica, alone)."""
        hung = {a for m, a in self.swarm_hits if m and a is not None}
        return len(hung) + sum(m and a is None for m, a in self.swarm_hits)


class SimilarityDetector:
    """Registry name `similarity`; implements the guard's `Detector` protocol."""

    name = "similarity"
    Options: ClassVar[type[BaseModel]] = SimilarityOptions

    def __init__(
        self,
        options: SimilarityOptions,
        env: Any = None,
        *,
        profile: Profile | None = None,
        weights: Weights | None = None,
    ) -> None:
        self.opts = options
        self.profile = profile or load_profile(options.profile, env)
        self.radius = self.profile.radius * options.radius_scale
        self.spread = max(self.profile.spread * options.spread_scale, self.radius)
        self.weights = weights or _weights(options.weights)
        self.tracks: OrderedDict[str, _Track] = OrderedDict()
        self.global_ring = Ring(
            options.global_history, self.profile.dim, options.ttl_s, options.global_index
        )
        # lineages some principal kept sending into while under suspicion, and who (bounded)
        self.caught: OrderedDict[int, int] = OrderedDict()
        self.relay = Relay(self.global_ring, self.radius, self.weights, options)
        cells = self.profile.cells
        self._cells = np.ascontiguousarray(-2.0 * cells, dtype=np.float32)
        self._cell_sq = (cells * cells).sum(1).astype(np.float32)
        self._far2 = (options.off_manifold * self.profile.cell_radius) ** 2
        self.global_feed = Feed(f"{self.name}:global", options.global_history)
        self.origin = uuid.uuid4().hex[:16]  # this replica, in the shared logs
        self._roots = np.random.default_rng()  # lineage ids, unique across replicas
        self._lock = threading.Lock()  # pull, judge, push: one step per process

    def _track(self, principal: str) -> _Track:
        track = self.tracks.get(principal)
        if track is None:
            track = _Track(
                Ring(self.opts.history, self.profile.dim, self.opts.ttl_s),
                Campaign(self.opts.window, self.opts.trigger),
                Feed(f"{self.name}:p:{principal}", self.opts.history),
                Recent(self.opts.window, self.profile.dim),
                (
                    SignSteps(_SIGN_MEMORY, self.weights.sign_step_at, self.profile.grid)
                    if self.weights.sign_step
                    else None
                ),
            )
            self.tracks[principal] = track
            while len(self.tracks) > self.opts.max_principals:
                self.tracks.popitem(last=False)
        else:
            self.tracks.move_to_end(principal)
        return track

    def _feeds(self, track: _Track) -> list[Feed]:
        return [track.feed, self.global_feed] if self.opts.cross_principal else [track.feed]

    def _sync(self, track: _Track, store: Store) -> None:
        """Take in what the other replicas saw since the last query (one store round trip):
        the principal's queries fill its ring and campaign window, everyone's the global ring."""
        got = pull(store, self.origin, self._feeds(track))
        for e in got[0]:
            track.ring.add(e)
            if e.repeat and self.opts.distinct_window:
                continue  # as on the replica that judged it: no window slot, no swarm member
            track.campaign.absorb(e.score - e.free, e.suspect, e.root, e.free)
            track.swarm_hits.append((e.moved, None))
            if self.opts.distinct_window:
                track.recent.add(e.vector)
        for e in got[1] if len(got) > 1 else ():
            self._remember(e)

    def _remember(self, e: Entry, norms: tuple[float, float] | None = None) -> None:
        """Add to the global history; note the lineage if its sender was under suspicion."""
        self.relay.remember(e)  # (first: it reads the entry the new one overwrites)
        self.global_ring.add(e, norms)
        if e.suspect and e.root and e.root not in self.caught:
            self.caught[e.root] = e.owner
            if len(self.caught) > self.opts.global_history:
                self.caught.popitem(last=False)

    def memory_bytes(self) -> int:
        """Bytes of history held for one principal (the global ring is shared)."""
        held = Ring.bound(self.opts.history, self.profile.dim)
        if self.weights.sign_step:
            held += _SIGN_MEMORY * int(np.prod(self.profile.shape)) * 8
        return held + Recent(self.opts.window, self.profile.dim).nbytes

    def memory_held(self) -> tuple[int, int]:
        """(principals tracked, bytes their histories hold now): rings grow with their
        principal's queries, so this is what real traffic costs, below `memory_bytes` each."""
        with self._lock:
            tracks = list(self.tracks.values())
        held = 0
        for t in tracks:
            held += t.ring.nbytes + t.recent.nbytes
            held += t.steps.recent.nbytes if t.steps and t.steps.recent is not None else 0
        return len(tracks), held

    def _off_manifold(self, v: npt.NDArray[np.float32]) -> bool:
        if not np.isfinite(self._far2):
            return False
        d2 = self._cells @ v
        d2 += self._cell_sq
        return bool(float(d2.min()) + float(v @ v) > self._far2)

    def observe(self, obs: Observation, store: Store) -> Evidence | None:
        # threads of one process (the in-process wrapper) would otherwise pull the same
        # entries twice or interleave their updates of one ring
        with self._lock:
            return self._observe(obs, store)

    def _observe(self, obs: Observation, store: Store) -> Evidence | None:
        x = next(iter(obs.inputs.values()))
        vecs = self.profile.features(x, obs.memo)
        labels = np.asarray(obs.prediction.labels).reshape(-1)
        track = self._track(obs.principal)
        if self.opts.persist:
            self._sync(track, store)
        ring, camp = track.ring, track.campaign
        me = owner_id(obs.principal)
        released, patterns = 0.0, set[str]()
        depth = 0
        entries = []
        for i, v in enumerate(vecs):
            label = int(labels[i]) if i < labels.size else -1
            own = ring.nearest(v, self.opts.k, self.radius, obs.time)
            glob = self.relay.parents(v, me, obs.time, own) if self.opts.cross_principal else own
            ln = link(own, glob, me, label, self.radius, self.weights)
            free, pats, score = 0.0, ln.patterns, ln.score
            caught_by = self.caught.get(ln.root, me) if ln.root else me
            if caught_by != me and score > 0 and "cross_principal" not in pats:
                # continuing a lineage another principal was caught in, past the query that
                # linked to it: the campaign moved accounts, whatever it links to next
                score, pats = score + self.weights.sybil, (*pats, "cross_principal")
            if not ln.patterns and self._off_manifold(v):
                # a fresh query far from all benign data (a repeat or an edit of one would
                # have linked): random starts and noise probes, which benign users never send
                free, pats = self.weights.off_manifold, ("off_manifold",)
            # (a verbatim repeat adds nothing, not even to a swarm: retrying is normal)
            repeat = pats == ("repeat",)
            swarm = not repeat and self.weights.swarm > 0
            crowd = 0
            if swarm and self.opts.distinct_window:
                crowd = track.recent.spread(v, self.radius, self.spread)
            elif swarm:
                crowd = ring.spread(v, self.opts.window, self.radius, self.spread)
            if crowd >= self.weights.swarm_at:
                extra = self.weights.swarm_each * (crowd - self.weights.swarm_at)
                free, pats = free + self.weights.swarm + extra, (*pats, "swarm")
            # (only sign steps read the raw input: a view of this row, taken only for them)
            if (
                track.steps is not None
                and not repeat
                and track.steps.step(np.reshape(x, (len(vecs), -1))[i])
            ):
                free, pats = free + self.weights.sign_step, (*pats, "sign_step")
            # an unexplained query inside another principal's campaign (see `sybils`)
            moved = self.relay.source(v, me, obs.time, ring) if not ln.patterns else None
            known = self.opts.cross_principal and self.relay.known(v, obs.time)
            root = ln.root or int(self._roots.integers(1, 2**62))
            if not (repeat and self.opts.distinct_window):
                released += camp.add(score, root, free)
                hangs = None
                if moved is not None and not camp.active:
                    hangs = self.relay.anchor(v, ring, obs.time)
                track.swarm_hits.append((moved is not None, hangs))
                w = self.weights
                if moved and not camp.active and track.items_moved() >= w.moved_at:
                    # the campaign moved here: it brings the evidence it had gathered
                    got = camp.inherit(self.opts.trigger + self.relay.heat.get(moved, 0.0))
                    released, free = released + got, free + got
                    pats = (*pats, "moved_account")
            entry = Entry(
                v,
                obs.time,
                me,
                label,
                ln.depth,
                ln.step,
                camp.active,
                score + free,
                root,
                free,
                repeat,
                moved is not None,
                known,
            )
            norms = ring.norms(v)  # (both rings store them)
            ring.add(entry, norms)
            if not repeat and self.opts.distinct_window:
                track.recent.add(v)
            if self.opts.cross_principal:
                self._remember(entry, norms)
            entries.append(entry)
            depth = max(depth, ln.depth)
            if score or free:
                patterns.update(pats)
        if self.opts.persist:  # one encoding, both logs, one round trip
            push(store, self.origin, self._feeds(track), entries, self.opts.ttl_s)
        if released <= 0:
            return None
        kind = "+".join(sorted(patterns - {"linked"})) or "linked"
        details = {"depth": depth, "radius": round(self.radius, 4)}
        now = self.opts.moved_now and "moved_account" in patterns
        return Evidence(released, kind, details, immediate=now)
