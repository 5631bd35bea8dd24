"""The input space an attacker may move in: bounds, shape and real-world constraints.

Fraud and credit models take rows whose features cannot be changed at will: an
applicant's age is immutable, a count is an integer, a category has a fixed set
of codes, a debt can only be raised. An adversarial row that breaks such a rule
is not an attack anyone could mount, so every attack projects its candidates
back into the feasible set and the oracle refuses to send one that is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

__all__ = ["Constraints", "Domain", "InputSpace"]

FloatArray = npt.NDArray[np.float64]


class Domain(StrEnum):
    IMAGE = "image"
    TABULAR = "tabular"


@dataclass(frozen=True)
class Constraints:
    """Per-feature rules (feature = column index of the flattened input).

    `monotone` maps a feature to +1 (may only increase) or -1 (may only decrease);
    `categorical` maps a feature to its allowed values.
    """

    immutable: tuple[int, ...] = ()
    integer: tuple[int, ...] = ()
    categorical: Mapping[int, tuple[float, ...]] = field(default_factory=dict)
    monotone: Mapping[int, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.immutable or self.integer or self.categorical or self.monotone)


@dataclass(frozen=True)
class InputSpace:
    """Flattened feature space with per-feature `lower`/`upper` bounds (the ranges)."""

    lower: FloatArray
    upper: FloatArray
    shape: tuple[int, ...]
    domain: Domain = Domain.IMAGE
    constraints: Constraints = field(default_factory=Constraints)

    @classmethod
    def build(
        cls,
        dim: int,
        bounds: tuple[float, float] | tuple[Sequence[float], Sequence[float]],
        *,
        shape: tuple[int, ...] | None = None,
        domain: Domain = Domain.IMAGE,
        constraints: Constraints | None = None,
    ) -> InputSpace:
        lo = np.broadcast_to(np.asarray(bounds[0], dtype=np.float64), (dim,)).copy()
        hi = np.broadcast_to(np.asarray(bounds[1], dtype=np.float64), (dim,)).copy()
        if np.any(lo > hi):
            raise ValueError("input space: a lower bound exceeds its upper bound")
        return cls(lo, hi, shape or (dim,), domain, constraints or Constraints())

    @property
    def dim(self) -> int:
        return int(self.lower.shape[0])

    @property
    def span(self) -> FloatArray:
        return self.upper - self.lower

    @property
    def free(self) -> npt.NDArray[np.bool_]:
        """Features an attacker may change at all."""
        mask = np.ones(self.dim, dtype=bool)
        mask[list(self.constraints.immutable)] = False
        return mask

    def project(self, x: FloatArray, origin: FloatArray | None = None) -> FloatArray:
        """Nearest feasible point (per feature) to each row of `x`."""
        c = self.constraints
        out = np.clip(np.asarray(x, dtype=np.float64), self.lower, self.upper)
        if origin is None or c.empty:
            return self._discretise(out, origin)
        o = np.broadcast_to(origin, out.shape)
        if c.immutable:
            idx = list(c.immutable)
            out[:, idx] = o[:, idx]
        for j, sign in c.monotone.items():
            out[:, j] = (
                np.maximum(out[:, j], o[:, j]) if sign > 0 else np.minimum(out[:, j], o[:, j])
            )
        return self._discretise(out, o)

    def _discretise(self, out: FloatArray, origin: FloatArray | None) -> FloatArray:
        c = self.constraints
        for j in c.integer:
            lo, hi = np.ceil(self.lower[j]), np.floor(self.upper[j])
            out[:, j] = np.clip(np.round(out[:, j]), lo, hi)
        for j, values in c.categorical.items():
            allowed = np.asarray(values, dtype=np.float64)
            cost = np.abs(out[:, j, None] - allowed[None, :])
            sign = c.monotone.get(j, 0)
            if origin is not None and sign:
                # a monotone category may only move along its order
                o = origin[:, j, None]
                bad = allowed[None, :] < o if sign > 0 else allowed[None, :] > o
                cost = np.where(bad, np.inf, cost)
            out[:, j] = allowed[np.argmin(cost, axis=1)]
        return out

    def violations(
        self, x: FloatArray, origin: FloatArray | None = None, *, tol: float = 1e-9
    ) -> npt.NDArray[np.bool_]:
        """Per row: does it break any bound or constraint? (origin-free rules if no origin)."""
        c = self.constraints
        x = np.asarray(x, dtype=np.float64)
        bad = np.any((x < self.lower - tol) | (x > self.upper + tol), axis=1)
        for j in c.integer:
            bad |= np.abs(x[:, j] - np.round(x[:, j])) > tol
        for j, values in c.categorical.items():
            allowed = np.asarray(values, dtype=np.float64)
            bad |= np.min(np.abs(x[:, j, None] - allowed[None, :]), axis=1) > tol
        if origin is not None:
            o = np.broadcast_to(origin, x.shape)
            for j in c.immutable:
                bad |= np.abs(x[:, j] - o[:, j]) > tol
            for j, sign in c.monotone.items():
                bad |= (x[:, j] < o[:, j] - tol) if sign > 0 else (x[:, j] > o[:, j] + tol)
        return np.asarray(bad, dtype=bool)
