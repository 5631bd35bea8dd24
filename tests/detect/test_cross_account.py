"""Across accounts: a campaign moved to a new account is carried over, a benign user who sends
the attacked item afterwards is not taken for its continuation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bastion.detect.arena import Arena, PrincipalTarget
from bastion.detect.campaigns import bastion_run, victims
from bastion.detect.streams import Task, _edit


# (attack, victim): HopSkipJump's queries lie within the radius of the item itself (the user was
# flagged at its 3rd query), SimBA's within the radius of an edit of it (at its 10th)
@pytest.mark.parametrize(("attack", "victim"), [("hopskipjump-l2", 0), ("simba-pixel", 1)])
def test_a_user_sending_the_attacked_item_and_edits_of_it_is_not_an_attackers_continuation(
    digits: Task, digits_profile: Path, attack: str, victim: int
) -> None:
    """An attack's deep, suspect queries around the item it attacked lie within the radius of
    the item itself and of a user's light edits of it. The item is a known input (the attacker
    sent it first, before any suspicion) and the edits descend from the user's own copy, so
    neither continues the attacker's walk, as the global history used to take them."""
    arena = Arena(digits, [{"kind": "similarity", "profile": str(digits_profile)}])
    i = victims(arena, victim + 1)[victim]
    attack_run = bastion_run(arena, attack, i, budget=300)
    assert attack_run.detected_at is not None
    x0 = digits.x_test[i]
    rng = np.random.default_rng(i)
    user = PrincipalTarget(arena, "later-user")
    for _ in range(2):  # the item, four edits of it, the item again, four more edits
        for q in [x0] + [_edit(digits, x0, rng) for _ in range(4)]:
            user.query(q[None])
    assert user.tally.detected_at is None
    assert arena.guard.store.get_state("later-user").evidence.get("similarity", 0.0) == 0.0
