"""Across accounts: a campaign moved to a new account is carried over, a benign user who sends
the attacked item afterwards is not taken for its continuation."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bastion.attacks.base import AttackData
from bastion.attacks.oracle import Oracle
from bastion.detect.adaptive import AdaptiveTarget
from bastion.detect.arena import Arena, PrincipalTarget, replay
from bastion.detect.campaigns import bastion_run, space_of, victims
from bastion.detect.streams import Task, _edit, benign_streams
from bastion.errors import BastionError
from bastion.registry import registry
from tests.detect.conftest import rows_similarity


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


def _rows_arena(task: Task, profile: Path) -> Arena:
    return Arena(task, [rows_similarity(profile)])


def _adaptive(arena: Arena, i: int, budget: int, accounts: int) -> AdaptiveTarget:
    t = arena.task
    x0 = t.x_test[i]
    y0 = int(t.predict_proba(x0[None]).argmax())
    target = AdaptiveTarget(
        arena, f"adaptive-{i}", x0, y0, eps_l2=t.eps_l2 * 1.4, accounts=accounts
    )
    space = space_of(arena)
    square: Any = registry("attacks").get("square-linf")
    with contextlib.suppress(BastionError):
        square(eps=t.eps_linf).run(
            Oracle(target, space=space), AttackData(space=space, x=x0[None]), budget=budget, seed=i
        )
    return target


@pytest.mark.parametrize("moved_now", [True, False])
def test_square_moved_to_fresh_accounts_on_rows_is_degraded_within_a_few_queries(
    cancer: Task, cancer_profile: Path, moved_now: bool
) -> None:
    """Square's steps on rows never link (they are larger than the near-radius), so a fresh
    account used to start from zero and get ~18 answers with scores, as many as the first.
    Its queries land in the first account's swarm of suspect queries: the first of them that
    does carries the campaign's evidence over (it took two, which left each fresh account a
    second answer with scores: a new candidate for Square on every account). With
    `moved_now` (the rows configuration) that very answer comes with labels only, so a fresh
    account gets no scores at all; without it, scores stop from the next answer."""
    entry = {**rows_similarity(cancer_profile), "moved_now": moved_now}
    arena = Arena(cancer, [entry])
    i = victims(arena, 1)[0]
    target = _adaptive(arena, i, budget=120, accounts=5)
    first, *fresh = [p.tally for p in target.used]
    assert first.detected_at is not None and first.stopped_at is not None
    assert fresh, "the attacker never moved accounts"
    for tally in fresh[:-1]:  # (the last one may have run out of budget)
        assert tally.detected_at is not None and tally.detected_at <= 3, tally
        assert tally.stopped_at is not None and tally.stopped_at <= tally.detected_at + 1
    det = arena.timers[0].det  # the similarity detector
    assert sum(det.tracks[fresh[0].principal].moved) >= 1  # a query in the old swarm
    # the query a fresh account was burned on before: answered with labels only at once, or
    # (without `moved_now`) with scores, which stop from the next answer on
    stopped_first = sum(t.stopped_at == 1 for t in fresh[:-1])
    if moved_now:
        assert stopped_first == len(fresh[:-1]), fresh
    else:
        assert stopped_first == 0, fresh
        assert sum(t.stopped_at == 2 for t in fresh[:-1]) >= len(fresh[:-1]) / 2, fresh


def test_benign_users_after_a_moved_campaign_are_not_taken_for_its_next_account(
    cancer: Task, cancer_profile: Path
) -> None:
    arena = _rows_arena(cancer, cancer_profile)
    i = victims(arena, 1)[0]
    _adaptive(arena, i, budget=120, accounts=5)
    x0 = cancer.x_test[i]
    rng = np.random.default_rng(0)
    user = PrincipalTarget(arena, "later-user")  # the attacked item and edits of it
    for q in [x0] + [_edit(cancer, x0, rng) for _ in range(6)]:
        user.query(q[None])
    assert user.tally.detected_at is None
    assert replay(arena, benign_streams(cancer, 60, seed=21, mean_queries=30))[0] == []


def test_shifted_copies_of_an_attacked_image_are_a_users_edits_not_a_moved_campaign(
    digits: Task, digits_profile: Path
) -> None:
    """Two-pixel shifts of an item lie farther from it than the near-radius, and as near to
    the attacks' queries around it as those are to one another. A user who sent the item
    itself (a catalogue item: the attackers sent it first) and then shifted copies of it is
    editing its own item; counting the copies as a campaign's next account flagged such
    users at once, with the attackers' evidence."""
    arena = Arena(digits, [{"kind": "similarity", "profile": str(digits_profile)}])
    i = victims(arena, 5)[4]
    for attack in ("simba-pixel", "square-linf", "rays"):
        assert bastion_run(arena, attack, i, budget=300).detected_at is not None
    x0 = digits.x_test[i].reshape(digits.shape)
    user = PrincipalTarget(arena, "later-user")
    user.query(x0.reshape(1, -1))
    for dy, dx in ((2, 0), (0, 2), (-2, 0), (0, -2), (2, 2), (-2, -2)):
        user.query(np.roll(x0, (dy, dx), axis=(0, 1)).reshape(1, -1))
    assert user.tally.detected_at is None


def test_the_adaptive_attacker_reads_the_label_of_an_answer_that_burns_its_account(
    cancer: Task,
) -> None:
    """Labels-only answers still carry the label: an evasion attacker whose candidate comes
    back with the wrong label has succeeded, whether or not the answer also cost it the
    account. The evaluation used to skip such answers and count the candidate only if a later
    account answered it with scores, so a flip seen on the last account was never counted."""
    arena = Arena(cancer, [])
    i = victims(arena, 1)[0]
    x0 = cancer.x_test[i]
    wrong = 1 - int(cancer.predict_proba(x0[None]).argmax())  # any answer "flips" it
    target = AdaptiveTarget(arena, "reader", x0, wrong, eps_l2=1.0, accounts=2)
    for k in range(2):  # both accounts already get labels only
        arena.guard.store.set_action(f"reader/acct{k}", "label_only", None)
    with pytest.raises(BastionError, match="burned"):
        target.query(x0[None])
    assert [p.tally.answered for p in target.used] == [1, 1]  # two label-only answers...
    assert target.success  # ...whose label the attacker read


def _flag_only(task: Task, entry: dict[str, Any]) -> Arena:
    """No action but the flag: a caught principal goes on being answered (and remembered)."""
    return Arena(task, [entry], actions=[{"at": 2.0, "action": "flag"}])


def _caught(
    arena: Arena,
    name: str,
    start: np.ndarray,
    seed: int,
    step: float = 0.02,
    lo: float = 0.0,
    hi: float = 1.0,
) -> PrincipalTarget:
    """A principal caught by a descent chain of small steps from `start`."""
    rng = np.random.default_rng(seed)
    p = PrincipalTarget(arena, name)
    x = start.copy()
    for _ in range(30):
        x = np.clip(
            x + rng.choice([-step, step], size=x.shape) * (rng.random(x.shape) < 0.05), lo, hi
        )
        p.query(x[None])
    assert p.tally.detected_at is not None
    return p


def test_an_items_edits_sent_under_suspicion_are_no_swarm_for_the_next_sender_of_the_item(
    cancer: Task, cancer_profile: Path
) -> None:
    """A flagged principal's item and its light edits lie within the near-radius of the item:
    they are that item, not a campaign's swarm around it. rows8's later-00265 re-sent an item
    a flagged benign user had sent with four edits, and inherited that user's 'campaign'."""
    arena = _flag_only(cancer, rows_similarity(cancer_profile))
    i, j = victims(arena, 2)
    bastion_run(arena, "hopskipjump-l2", i, budget=60)
    flagged = PrincipalTarget(arena, f"hopskipjump-l2-{i}")
    assert arena.evidence(flagged.tally.principal) >= 2.0
    x = cancer.x_test[j]
    rng = np.random.default_rng(1)
    for q in [x] + [_edit(cancer, x, rng) for _ in range(4)]:  # sent under suspicion
        flagged.query(q[None])
    user = PrincipalTarget(arena, "next-user")
    user.query(x[None])
    det = arena.timers[0].det
    assert not any(det.tracks["next-user"].moved)
    assert arena.evidence("next-user") == 0.0


def test_two_augmentations_of_one_item_in_a_caught_swarm_move_no_campaign(
    digits: Task, digits_profile: Path
) -> None:
    """A user sends a popular item, then two shifted copies of it, each of which lands among
    a caught principal's queries (digits32's later-00090 did so in an adaptive attacker's
    swarm and inherited 7.35). Both copies hang from the item (each lies nearer to it than
    to the other): one item's edits, counted once, so no campaign moves. A fresh account
    sending the two copies alone, the second hanging from the first, is moved at once."""
    arena = _flag_only(digits, {"kind": "similarity", "profile": str(digits_profile)})
    det = arena.timers[0].det
    i, k = victims(arena, 6)[4:6]
    x0 = digits.x_test[i].reshape(digits.shape)
    # two-pixel shifts: 2.5 and 2.7 radii from the item, 3.6 from one another
    copies = [np.roll(x0, (2, 0), axis=(0, 1)), np.roll(x0, (-2, 0), axis=(0, 1))]
    PrincipalTarget(arena, "earlier-user").query(x0.reshape(1, -1))  # a catalogue item
    caught = _caught(arena, "caught", digits.x_test[k], seed=4)
    rng = np.random.default_rng(5)  # its swarm: noisy variants of each copy, 1.2-1.8 radii off
    for c in copies:
        fc, sent, sigma = det.profile.features(c[None], {})[0], 0, 0.02
        while sent < 4:
            z = np.clip(c + rng.normal(0, sigma, c.shape), 0, 1)
            d = float(np.linalg.norm(det.profile.features(z[None], {})[0] - fc)) / det.radius
            if d < 1.2 or d > 1.8:
                sigma *= 1.3 if d < 1.2 else 1 / 1.2
                continue
            caught.query(z.reshape(1, -1))
            sent += 1
    user = PrincipalTarget(arena, "user")
    for q in [x0, *copies]:
        user.query(q.reshape(1, -1))
    track = det.tracks["user"]
    assert list(track.moved) == [False, True, True]  # both copies land in the caught swarm
    assert track.items_moved() == 1  # ... hanging from the item: one item's edits
    assert arena.evidence("user") == 0.0
    fresh = PrincipalTarget(arena, "fresh")
    for c in copies:  # (faintly noisy: the user's exact copies are catalogue items now)
        fresh.query(np.clip(c + rng.normal(0, 0.002, c.shape), 0, 1).reshape(1, -1))
    assert det.tracks["fresh"].items_moved() == 2
    assert fresh.tally.detected_at == 2


def _near_pair(task: Task, det: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two distinct items whose features lie 1.3-1.9 near-radii apart: in each other's swarm
    radius (twice the near-radius), and beyond the near-radius."""
    f = det.profile.features(task.x_fit, {})
    for a in range(len(f)):
        d = np.sqrt(np.square(f - f[a]).sum(1)) / det.radius
        ok = np.flatnonzero((d > 1.3) & (d < 1.9))
        if ok.size:
            return task.x_fit[a], task.x_fit[int(ok[0])]
    raise AssertionError("no such pair")


@pytest.mark.parametrize("amid", [True, False])
def test_an_item_beside_a_flagged_users_tight_cluster_of_edits_moves_no_campaign(
    rows8_task: Task, rows8_profile: Path, monkeypatch: pytest.MonkeyPatch, amid: bool
) -> None:
    """A flagged user (benign or not) edits item X many times: a tight cluster. Another user's
    first query is item Y, a distinct item that happens to lie 1.3-1.9 near-radii from X: in
    the cluster's swarm radius, yet beside it, far from its centre for its size. It continues
    no campaign. (On rows8's calibration streams one user flagged by its own edits passed its
    'campaign' on this way to seven users in turn.) Without the test of where the query lies
    in the swarm, it does."""
    import bastion.detect.sybils as sybils

    if not amid:
        monkeypatch.setattr(sybils, "_AMID", float("inf"))
    arena = _flag_only(rows8_task, rows_similarity(rows8_profile))
    det = arena.timers[0].det
    x, y = _near_pair(rows8_task, det)
    flagged = _caught(arena, "flagged", rows8_task.x_test[5], seed=2, step=0.05, lo=-5, hi=5)
    rng = np.random.default_rng(3)
    for q in [x] + [_edit(rows8_task, x, rng) for _ in range(6)]:  # under suspicion
        flagged.query(q[None])
    user = PrincipalTarget(arena, "user")
    user.query(y[None])
    assert list(det.tracks["user"].moved) == [not amid]
    assert (arena.evidence("user") == 0.0) is amid


def test_the_attacked_item_stays_a_catalogue_item_after_the_attack_turns_the_history_over(
    cancer: Task, cancer_profile: Path
) -> None:
    """The global history is bounded: an attack's own queries push every benign copy of the
    item it attacks out of it. The catalogue of inputs sent before suspicion is kept apart,
    so a later user who sends that item is still sending a known item, not a query into the
    attack's swarm (rows8's later users, after the adaptive runs, inherited the attack)."""
    entry = {**rows_similarity(cancer_profile), "global_history": 64}
    arena = _flag_only(cancer, entry)
    det = arena.timers[0].det
    i = victims(arena, 1)[0]
    x0 = cancer.x_test[i]
    PrincipalTarget(arena, "earlier-user").query(x0[None])
    attacker = _caught(arena, "attacker", x0, seed=6, step=0.05, lo=-5, hi=5)  # 30 queries
    rng = np.random.default_rng(7)
    for _ in range(70):  # under suspicion: the history's 64 entries are all the attacker's
        attacker.query((x0 + rng.normal(0, 0.05, x0.shape))[None])
    v = det.profile.features(x0[None], {})[0]
    held = det.global_ring.vec[: det.global_ring.size]
    assert not np.any(np.all(held == v, axis=1))  # the history holds no copy of it now
    assert det.relay.known(v)
