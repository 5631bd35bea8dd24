"""How far an evasion may move an input and still count as the same input.

A decision-based attack with no bound always "succeeds": an input of another
class is an adversarial for any point. Success only means something within a
radius, and an audit must state it. The manifest may declare the radius
(`model.input.perturbation`); otherwise it is read from the attacker's own
labelled data: a quarter of the median distance from a point to the nearest
point of another class, in the attack's norm. Moving an input a quarter of
the way towards its nearest genuinely different neighbour leaves it what it
was to a person, so a model that changes its answer there is fooled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bastion.attacks.base import AttackData, AttackKind, Norm

__all__ = ["DEFAULT_FRACTION", "Radius", "radius_for", "success_radius"]

# One radius for every evasion attack, one per norm, or None (any adversarial counts).
Radius = float | Mapping[Norm, float] | None


def radius_for(radius: Radius, cls: Any) -> float | None:
    """The radius an attack class is judged by: evasion attacks only, in their own norm."""
    if radius is None or getattr(cls, "kind", None) is not AttackKind.EVASION:
        return None
    if isinstance(radius, Mapping):
        return radius.get(Norm(getattr(cls, "norm", Norm.L2)))
    return float(radius)


DEFAULT_FRACTION = 0.25
_MAX_ROWS = 1000  # pairwise distances stay small


def success_radius(
    data: AttackData, norm: Norm, fraction: float = DEFAULT_FRACTION
) -> float | None:
    """The success radius in `norm`, or None when the data has fewer than two labelled classes."""
    xs, ys = [], []
    if data.y is not None:
        xs.append(data.x)
        ys.append(data.y)
    if data.x_eval is not None and data.y_eval is not None:
        xs.append(data.x_eval)
        ys.append(data.y_eval)
    if not xs:
        return None
    x = np.concatenate([a.reshape(a.shape[0], -1) for a in xs]).astype(np.float64)
    y = np.concatenate(ys).astype(np.int64)
    cap = _MAX_ROWS if x.shape[1] <= 256 else _MAX_ROWS // 3  # images: fewer, larger rows
    if x.shape[0] > cap:
        keep = np.random.default_rng(0).choice(x.shape[0], cap, replace=False)
        x, y = x[keep], y[keep]
    if np.unique(y).size < 2:
        return None
    n = x.shape[0]
    other = y[:, None] != y[None, :]
    if norm is Norm.L2:
        sq = (x * x).sum(1)
        dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0))
        nearest = np.where(other, dist, np.inf).min(1)
    else:
        nearest = np.full(n, np.inf)
        x32 = x.astype(np.float32)
        step = max(1, int(4e6 // (n * x.shape[1])))  # bounded memory for images
        for start in range(0, n, step):
            rows = x32[start : start + step, None, :]
            block = np.abs(rows - x32[None, :, :]).max(-1)
            nearest[start : start + step] = np.where(
                other[start : start + step], block, np.inf
            ).min(1)
    finite = nearest[np.isfinite(nearest) & (nearest > 0)]
    if finite.size == 0:
        return None
    return float(fraction * np.median(finite))
