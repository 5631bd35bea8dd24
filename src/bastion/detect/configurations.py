"""The named detector configurations: what `bastion detect eval` measures and what
`bastion guard init --from-report` writes, from one table, so the figures the evaluation
reports are those of the configuration users get.

Kept apart from the evaluation harness so the guard's planner can read it without
importing the harness (attacks, arena).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

__all__ = ["CONFIGURATIONS", "DOMAIN_CONFIGURATION", "detectors"]

# name -> detector entries as in guard.yaml ("{profile}" is replaced by the fitted profile)
CONFIGURATIONS: dict[str, list[dict[str, Any]]] = {
    "similarity": [{"kind": "similarity", "profile": "{profile}"}],
    "similarity+extraction": [
        {"kind": "similarity", "profile": "{profile}"},
        {"kind": "extraction", "profile": "{profile}"},
    ],
    "strict+extraction": [
        {"kind": "similarity", "profile": "{profile}", "trigger": 2.8},
        {"kind": "extraction", "profile": "{profile}"},
    ],
    # tabular rows: boundary hugging weighs more (RayS's and HopSkipJump's binary searches on
    # rows flip labels before anything else links); tied best on the development data. The
    # graded swarm and the window of distinct inputs (made for Square on images) cost rows
    # false positives on the calibration streams and catch nothing more there: rows keep both off.
    # Square's steps on rows never link, so a campaign moved to a fresh account is only seen by
    # where its queries land (`sybils`): on rows one such query moves it (`moved_at: 1`; on the
    # development data no benign user more was flagged, where on images 19 of 1,000 later were),
    # and from that very answer (`moved_now`): a fresh account's first answer would otherwise
    # carry exact scores, one per account (rows8's adaptive runs: 9 → 8 of 256 succeed, the 8
    # all on one victim broken before any evidence; in the benchmark's pipeline 2 → 1 of 32).
    # Square's L∞ vertices are sign steps (`steps`): two of them (1.2 each) are a campaign, so
    # Square is caught at its third query (the seed, the stripes, one square), before it
    # breaks a point (rows8 had one that fell at query 3); no query of 10,000 calibration
    # principals on either table is one. Crowding weighs 0.2, not 0.3: on 10,000 calibration
    # principals it was most of the users flagged by their own queries (rows8 6 → 3, cancer
    # 4 → 2 at the trigger), and at 0.2 the development attacks are caught at the same query
    # (SimBA on cancer 1-2 queries later), where without it SimBA on cancer took 66-91
    "rows+extraction": [
        {
            "kind": "similarity",
            "profile": "{profile}",
            "weights": {
                "flip": 0.4,
                "crowd": 0.2,
                "swarm_each": 0.0,
                "moved_at": 1,
                "sign_step": 1.2,
            },
            "distinct_window": False,
            "moved_now": True,
        },
        {"kind": "extraction", "profile": "{profile}"},
    ],
    "fingerprint": [{"kind": "fingerprint", "salt": "eval"}],
}
# the configuration named for each domain (guard plans write it; calibration checks it)
DOMAIN_CONFIGURATION = {"image": "similarity+extraction", "tabular": "rows+extraction"}


def detectors(name: str, profile: Path | str) -> list[dict[str, Any]]:
    """Configuration `name`'s detector entries as in guard.yaml, `profile` in place of
    "{profile}" (a copy: callers may edit it)."""
    entries = copy.deepcopy(CONFIGURATIONS[name])
    for e in entries:
        if e.get("profile") == "{profile}":
            e["profile"] = str(profile)
    return entries
