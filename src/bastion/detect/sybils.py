"""Across accounts: the global neighbours provenance links to, and campaigns moved to new accounts.

Provenance carries a campaign across accounts when the new account's queries
link to the old one's (within the near-radius). A random search whose steps are
larger than that radius (Square's L∞ steps on rows) never links, so each fresh
account used to start from zero evidence and got as many answers with scores
as the first one. What such a campaign leaves behind is a swarm of suspect
queries around the point it attacks; a fresh account continuing it sends query
after query into that swarm, none an edit of its own or a known item.

`Relay` watches for that: a query nothing explains (no own neighbour within
the radius, no parent across principals, not a catalogue item — an input
some principal sent before suspicion — and not near a catalogue item the
principal itself sent) that has at least `near` queries of another, caught
principal within twice the radius, and beyond the radius, and that lies
amid those queries rather than beside them (see `_amid`), is *in a
campaign's swarm*. When `at` of a principal's recent distinct queries are
(those that hang from one own earlier query counted once: see `anchor`),
the campaign has moved to that principal, and it inherits the evidence the campaign had
gathered (`heat`: the scores of the old account's suspect queries, plus the
trigger). A benign user re-sends popular items (catalogue items), edits its
own items (explained, or hanging from the item), and rarely sends two distinct
new items into one attack's swarm.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.detect.history import EMPTY, Entry, Neighbours, Ring, input_key
from bastion.detect.provenance import Weights

__all__ = ["Relay"]

_CATALOGUE = 4  # catalogue items remembered, per entry of the global history
_AMID = 3.0  # a query this many times the swarm's own reach from its centre lies beside it


class Relay:
    """The global history as the other principals' side of provenance: parents across
    principals, campaign heat per principal, and the swarm test of a fresh account's queries.
    `options`: the similarity detector's (k, global_history, cross_principal)."""

    def __init__(self, ring: Ring, radius: float, w: Weights, options: Any) -> None:
        # a campaign's swarm: nearer than benign items almost ever are to one another (twice
        # the near-radius is the 1 % quantile of benign nearest-neighbour distances); the
        # swarm radius, where 20 % of benign items have a neighbour, took in a later user's
        # distinct items of the attacked item's class on images
        self.ring, self.radius, self.spread = ring, radius, 2.0 * radius
        self.k, self.deep, self.cap = int(options.k), w.deep_at - 1, int(options.global_history)
        self.near = w.moved_near if options.cross_principal and w.moved_at > 0 else 0
        # the scores of each principal's queries sent under suspicion (bounded, oldest first)
        self.heat: OrderedDict[int, float] = OrderedDict()
        # the inputs sent before suspicion (a hash of their exact bytes -> when last sent), the
        # most recently sent `_CATALOGUE` × the global history's capacity of them: kept apart
        # from the history, which attack traffic turns over quickly, so that the very item an
        # attack started from stays known after the attack's own queries have pushed every
        # benign copy of it out (rows8's later users sent it, and inherited the attack)
        self.catalogue: OrderedDict[int, float] = OrderedDict()
        self.catalogue_cap = _CATALOGUE * ring.capacity

    def known(self, v: npt.NDArray[np.float32], now: float | None = None) -> bool:
        """Whether some principal sent exactly this input before any suspicion (within the
        history's TTL, when it has one and `now` is given): a catalogue item (popular items,
        the very item an attack started from)."""
        seen = self.catalogue.get(input_key(v))
        if seen is None:
            return False
        ttl = self.ring.ttl_s
        return ttl is None or now is None or seen >= now - ttl

    def remember(self, e: Entry) -> None:
        """Take in an entry about to be added to the global history."""
        if not e.suspect:
            key = input_key(e.vector)
            self.catalogue[key] = e.time
            self.catalogue.move_to_end(key)
            if len(self.catalogue) > self.catalogue_cap:
                self.catalogue.popitem(last=False)
            return
        self.heat[e.owner] = self.heat.get(e.owner, 0.0) + e.score
        self.heat.move_to_end(e.owner)
        if len(self.heat) > self.cap:
            self.heat.popitem(last=False)

    def parents(
        self, v: npt.NDArray[np.float32], me: int, now: float, own: Neighbours
    ) -> Neighbours:
        """The global neighbours provenance judges (see `link`): the `k` nearest of all
        entries, own ones included, as `link` expects. `link` can only take as parent a query
        of another principal, sent under suspicion, deep in a lineage; when no candidate near
        enough is one, nothing is returned (the same outcome). The search is skipped with no
        other principal's suspect entry in the global history (checked first: the common
        case), and for an edit of a catalogue item the principal sent (`own`, its own
        neighbours), which `link` never gives a parent across principals."""
        g = self.ring
        if g.suspects == g.suspect_by.get(me, 0):  # no other principal's suspect query held
            return EMPTY
        if bool(own.known[own.dist < self.radius].any()):
            return EMPTY

        def usable(i: npt.NDArray[np.intp]) -> bool:
            return bool(np.any((g.owner[i] != me) & g.suspect[i] & (g.depth[i] >= self.deep)))

        return g.nearest(v, self.k, self.radius, now, unless=usable)

    def source(self, v: npt.NDArray[np.float32], me: int, now: float, own: Ring) -> int | None:
        """The principal whose campaign's swarm this (unexplained) query lands in, if any: the
        hottest of the other principals caught (with a suspect query held) that have at least
        `near` queries within the swarm radius — all their queries, not only those sent under
        suspicion: an account degraded at its first evidence leaves one or two of those, and
        the campaign's first queries, which raised that evidence, lie in the same swarm.
        None for a catalogue item (see `known`) and for a query this near one the principal
        sent as a catalogue item: a user's larger edits of an item, such as a two-pixel
        shift of the attacked item, land among an attack's queries around it too."""
        g = self.ring
        if not self.near or g.suspects == g.suspect_by.get(me, 0) or self.known(v, now):
            return None

        def items(i: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
            return np.asarray(own.known[i])

        if own.nearest(v, 1, self.spread, now, keep=items).dist.size:
            return None
        caught = np.fromiter((o for o in g.suspect_by if o != me), dtype=np.int64)

        def others(i: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
            return np.asarray(g.owner[i] != me)

        def enough(i: npt.NDArray[np.intp]) -> bool:
            return int(np.count_nonzero(np.isin(g.owner[i], caught))) >= self.near

        got = g.nearest(v, 4 * self.near + 8, self.spread, now, keep=others, unless=enough)
        if got.dist.size == 0:
            return None
        # a swarm lies *around* the query: another principal's queries within the near-radius
        # of it are the query's own item (that principal's copy of it and its light edits),
        # which anyone sending the item lands next to; the swarm signal counts the same way
        around = np.isin(got.owner, caught) & (got.dist > self.radius)
        owners, counts = np.unique(got.owner[around], return_counts=True)
        hot = [int(o) for o, c in zip(owners, counts, strict=True) if c >= self.near]
        if not hot or not self._amid(v, owners, now):
            return None
        return max(hot, key=lambda o: self.heat.get(o, 0.0))

    def _amid(self, v: npt.NDArray[np.float32], owners: npt.NDArray[Any], now: float) -> bool:
        """Whether `v` lies amid the caught `owners`' queries within the swarm radius (all of
        them: a campaign spread over accounts is one swarm), not beside them: no farther from
        their centre than `_AMID` times the farthest of them. A campaign's next query lands
        among its earlier ones (Square's candidates all lie about one step from the item and
        from one another); a user's first query of an item that happens to lie near another
        item, which a flagged user edited many times, lies beside that tight cluster (rows8's
        calibration users: 1.51 from the centre of a cluster whose farthest query lies 0.24
        from it, six times its reach; one such user passed its "campaign" on to seven in
        turn). Run only for a query already found in a swarm (rare): an exact scan of the
        global history."""
        g = self.ring
        n = g.size
        mine = np.flatnonzero(np.isin(g.owner[:n], owners))
        vec = g.vec[mine]
        near = np.square(vec - v).sum(1) <= self.spread * self.spread
        if g.ttl_s is not None:
            near &= g.time[mine] >= now - g.ttl_s
        vec = vec[near]
        if len(vec) == 0:
            return False
        centre = vec.mean(axis=0)
        reach = float(np.sqrt(np.square(vec - centre).sum(1).max()))
        return float(np.sqrt(np.square(v - centre).sum())) <= _AMID * reach

    def anchor(self, v: npt.NDArray[np.float32], own: Ring, now: float) -> int | None:
        """The slot of the principal's own earlier query nearest to `v` (None: none): what a
        query in a campaign's swarm hangs from. A user's augmentations of one item are
        independent perturbations of it, each nearer the item than to one another (two edits
        about d from the item lie about d·√2 apart: a star), so two of them in a swarm hang
        from one query and count once toward `moved_at`. A moved campaign's first query in a
        fresh account hangs from nothing there, and its next one from that first query, so it
        still moves at its second query. Not told apart: an attack that sends the item itself
        first and then candidates all about one step from it (Square's first candidates on
        images lie on the L∞ shell around the item: a star too). An exact scan of the
        principal's own history, run only for a query in a swarm before its campaign is
        active (rare)."""
        n = own.size
        if n == 0:
            return None
        d2 = np.square(own.vec[:n] - v).sum(1)
        if own.ttl_s is not None:
            d2[own.time[:n] < now - own.ttl_s] = np.inf
        i = int(np.argmin(d2))
        return i if np.isfinite(d2[i]) else None
