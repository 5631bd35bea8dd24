"""Attack campaigns driven through the arena: bastion's attacks, ART's, an adaptive attacker,
and model extraction, each as one principal (or several, for the adaptive one).

Every function returns `Tally` records: when the guard first had enough
evidence to act, how many queries the attacker got answered, and whether it
reached its goal (an adversarial example within the task's eps, or a copy of
the model with fidelity ≥ 0.8) from answers the guard actually gave.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.attacks.base import AttackData
from bastion.attacks.oracle import Oracle
from bastion.attacks.space import Domain, InputSpace
from bastion.detect.adaptive import AdaptiveTarget
from bastion.detect.arena import Arena, PrincipalTarget, Tally
from bastion.errors import BastionError, TargetError
from bastion.registry import registry
from bastion.target.base import OutputKind

__all__ = ["art_run", "bastion_run", "extraction_run", "space_of", "victims"]

BASTION_ATTACKS = ("hopskipjump-l2", "boundary", "square-linf", "simba-pixel", "rays")
ART_ATTACKS = ("art-hopskipjump", "art-square", "art-boundary", "art-simba")


def space_of(arena: Arena) -> InputSpace:
    t = arena.task
    dom = Domain.IMAGE if t.domain == "image" else Domain.TABULAR
    bounds = (t.lower.tolist(), t.upper.tolist())
    return InputSpace.build(t.lower.size, bounds, shape=t.shape, domain=dom)


def victims(arena: Arena, n: int, offset: int = 0) -> list[int]:
    """Test points the model gets right with confidence ≥ 0.9 (a mistake or a coin flip
    needs no attack: one random query flips it, before any detector could see a pattern)."""
    t = arena.task
    p = t.predict_proba(t.x_test)
    ok = np.flatnonzero((p.argmax(1) == t.y_test) & (p.max(1) >= 0.9))
    return [int(i) for i in ok[offset : offset + n]]


def _eps(arena: Arena, attack: str) -> float:
    return arena.task.eps_linf if "linf" in attack or "rays" in attack else arena.task.eps_l2


def bastion_run(arena: Arena, attack: str, i: int, budget: int, tag: str = "") -> Tally:
    """One bastion attack on test point `i` as its own principal."""
    t = arena.task
    x0 = t.x_test[i]
    y0 = int(t.predict_proba(x0[None]).argmax())
    cls: Any = registry("attacks").get(attack)
    target = PrincipalTarget(arena, f"{tag}{attack}-{i}", x0=x0, y0=y0, eps_l2=t.eps_l2 * 1.4)
    space = space_of(arena)
    with contextlib.suppress(BastionError):  # the guard stopped it (blocked, scores withdrawn)
        cls(eps=_eps(arena, attack)).run(
            Oracle(target, access=cls.access, space=space),
            AttackData(space=space, x=x0[None]),
            budget=budget,
            seed=i,
        )
    target.tally.extra["attack"] = attack
    return target.tally


def adaptive_run(arena: Arena, i: int, budget: int, accounts: int, tag: str = "") -> Tally:
    """The adaptive attacker (see `adaptive`) running Square against test point `i`."""
    t = arena.task
    x0 = t.x_test[i]
    y0 = int(t.predict_proba(x0[None]).argmax())
    target = AdaptiveTarget(
        arena, f"{tag}adaptive-{i}", x0, y0, eps_l2=t.eps_l2 * 1.4, accounts=accounts, seed=i
    )
    space = space_of(arena)
    cls: Any = registry("attacks").get("square-linf")
    with contextlib.suppress(BastionError):
        cls(eps=t.eps_linf).run(
            Oracle(target, space=space), AttackData(space=space, x=x0[None]), budget=budget, seed=i
        )
    return target.summary()


class _SeededRandomModule:
    """`numpy.random` as ART's HopSkipJump and Boundary see it during a seeded run: their
    `np.random.RandomState()` (no seed: OS entropy) is seeded; everything else is numpy's."""

    def __init__(self, seed: int) -> None:
        self._seeds = np.random.SeedSequence(seed)

    def RandomState(self, seed: Any = None) -> np.random.RandomState:
        if seed is None:
            seed = int(self._seeds.spawn(1)[0].generate_state(1)[0])
        return np.random.RandomState(seed)

    def __getattr__(self, name: str) -> Any:
        return getattr(np.random, name)


class _SeededNumpy:
    """The `np` those two ART modules see: numpy with `_SeededRandomModule` as `random`."""

    def __init__(self, seed: int) -> None:
        self.random = _SeededRandomModule(seed)

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


@contextlib.contextmanager
def seeded_art(seed: int) -> Iterator[None]:
    """Make one ART run reproducible. ART draws from numpy's global RNG (Square, SimBA,
    HopSkipJump's and Boundary's steps), Python's `random` (Square's perturbation shapes) and
    fresh unseeded `RandomState()`s (HopSkipJump's and Boundary's random starting points).
    All three are seeded for the run and the global states restored afterwards, so a
    benchmark gives the same counts twice and nothing else's randomness shifts."""
    from art.attacks.evasion import boundary, hop_skip_jump

    np_state, py_state = np.random.get_state(), random.getstate()
    modules = (boundary, hop_skip_jump)
    saved = [m.np for m in modules]
    np.random.seed(seed)
    random.seed(seed)
    try:
        for m in modules:
            m.np = _SeededNumpy(seed)
        yield
    finally:
        for m, orig in zip(modules, saved, strict=True):
            m.np = orig
        np.random.set_state(np_state)
        random.setstate(py_state)


def art_run(
    arena: Arena, attack: str, i: int, budget: int, tag: str = "", seed: int | None = None
) -> Tally:
    """One ART attack (an independent implementation) driven through the same guard, seeded
    by `seed` (default: the test point's index `i`, as bastion's attacks are).
    ART's Square and SimBA work on images only; on rows they are skipped (empty tally)."""
    from art.attacks.evasion import BoundaryAttack, HopSkipJump, SimBA, SquareAttack
    from art.estimators.classification import BlackBoxClassifierNeuralNetwork

    t = arena.task
    x0 = t.x_test[i]
    y0 = int(t.predict_proba(x0[None]).argmax())
    target = PrincipalTarget(arena, f"{tag}{attack}-{i}", x0=x0, y0=y0, eps_l2=t.eps_l2 * 1.4)
    target.tally.extra["attack"] = attack
    if t.domain != "image" and attack in ("art-square", "art-simba"):
        target.tally.extra["skipped"] = True
        return target.tally
    label_only = attack in ("art-hopskipjump", "art-boundary")

    def predict(x: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        if target.tally.queries >= budget:
            raise TargetError("budget spent")
        r = target.query(np.asarray(x, dtype=np.float64).reshape(len(x), -1))
        if label_only or r.scores is None:
            return np.eye(t.n_classes)[r.labels]
        return np.asarray(r.scores, dtype=np.float64)

    shape = t.shape if t.domain == "image" else (t.lower.size,)
    clip = (float(t.lower.min()), float(t.upper.max()))
    clf = BlackBoxClassifierNeuralNetwork(
        predict, shape, t.n_classes, channels_first=False, clip_values=clip
    )
    if attack == "art-hopskipjump":
        atk: Any = HopSkipJump(clf, max_iter=20, max_eval=200, init_eval=20, verbose=False)
    elif attack == "art-boundary":
        atk = BoundaryAttack(clf, targeted=False, max_iter=200, num_trial=10, verbose=False)
    elif attack == "art-square":
        atk = SquareAttack(
            clf, norm=np.inf, eps=t.eps_linf, max_iter=budget, nb_restarts=1, verbose=False
        )
    else:
        atk = SimBA(clf, attack="px", max_iter=budget, epsilon=0.2, verbose=False)
    with (
        seeded_art(i if seed is None else seed),
        contextlib.suppress(BastionError, ValueError, IndexError),
    ):
        atk.generate(x0.reshape(1, *shape).astype(np.float32))
    target.tally.extra["attack"] = attack
    return target.tally


def extraction_run(
    arena: Arena, strategy: str, budget: int, seed: int, tag: str = "", batch: int = 10
) -> Tally:
    """Copy the model by `strategy` (natural | random | synthetic); record the fidelity curve
    and the fidelity the copy had when the guard first had enough evidence to act."""
    from bastion.attacks.surrogate import fit_surrogate, predict_labels

    t = arena.task
    rng = np.random.default_rng(seed)
    target = PrincipalTarget(arena, f"{tag}extract-{strategy}-{seed}", output=OutputKind.LABEL)
    x_eval = t.x_fit[rng.permutation(len(t.x_fit))[:300]]
    truth = t.predict_proba(x_eval).argmax(1)
    natural = t.x_test[rng.permutation(len(t.x_test))]
    xs: list[npt.NDArray[np.float64]] = []
    ys: list[npt.NDArray[np.int64]] = []
    curve: list[tuple[int, float]] = []

    def copy(n: int, x: npt.NDArray[np.float64], y: npt.NDArray[np.int64]) -> None:
        """The fidelity of a copy fitted on the first `n` answers (two classes needed)."""
        if len(np.unique(y)) > 1:
            model = fit_surrogate(x, y, kind="logistic", seed=seed, max_iter=60)
            curve.append((n, float(np.mean(predict_labels(model, x_eval) == truth))))

    seen = 0
    while seen < budget:
        if strategy == "natural":
            b = natural[seen % len(natural) : seen % len(natural) + batch]
        elif strategy == "random":
            b = t.lower + rng.random((batch, t.lower.size)) * (t.upper - t.lower)
        else:  # synthetic: augment what is known along random directions (Jacobian-like)
            base = natural[:20] if not xs else np.concatenate(xs)
            pick = base[rng.integers(len(base), size=batch)]
            step = 0.1 * (t.upper - t.lower) * rng.choice([-1.0, 1.0], size=pick.shape)
            b = np.clip(pick + step * (rng.random(pick.shape) < 0.2), t.lower, t.upper)
        try:
            r = target.query(b)
        except TargetError:
            break
        xs.append(b)
        ys.append(r.labels)
        if not seen:
            # the first answers one at a time: an easy model is copied within a handful of
            # them, before any detector can tell a thief from a user (cancer: 3)
            for k in range(2, len(b)):
                copy(k, b[:k], r.labels[:k])
        seen += len(b)
        # fine-grained early on: a simple model can be copied within a few dozen queries
        if seen <= 10 * batch or seen % (5 * batch) == 0 or seen >= budget:
            copy(seen, np.concatenate(xs), np.concatenate(ys))
    tally = target.tally
    tally.extra["strategy"] = strategy
    tally.extra["curve"] = curve
    at = tally.detected_at
    before = [f for q, f in curve if at is None or q <= at]
    tally.extra["fidelity_at_detection"] = before[-1] if before else 0.0
    reach = [q for q, f in curve if f >= 0.8]
    tally.extra["queries_to_fidelity_0.8"] = reach[0] if reach else None
    tally.success = bool(reach and (at is None or reach[0] < at))
    return tally
