"""Sign steps: queries that differ from a recent one by one step size on several features.

Score-based L∞ random searches such as Square only ever send vertices of
the ε-ball around their seed: every feature sits exactly ε above or below it
(Jacobian-based synthetic data for extraction moves by λ·sign of a gradient,
the same shape). Any two such queries therefore
differ by 0 or ±2ε on every feature, and the first differs from the seed by
±ε on all of them. That holds for a campaign's very first step, before its
queries are near enough to one another to link (on rows Square's steps are
wider than the profile radius) and before any answer could have told the
defence anything else; and it holds between any two of its queries, so a
guard replica that sees only every other query sees it as well.

A user's edits of a row are not like that: they change a few features by
amounts drawn from the feature's own scale (and rounding leaves the rest a
little off), so the largest change is shared by one feature, rarely two. The
exception is features that only take values on a grid (counts, integer codes,
one-hot columns, values recorded to fixed decimals): a user who adds one to
three counts moves them by one step size too. So a feature whose fit data lie
on a grid does not count towards a tie when the step is a whole number of its
grid units: such a step leads to a value users can send. An attacker whose ε
is itself a whole number of grid units stays unseen by this test; a
real-valued ε lands between the grid's values (on rows recorded to four
decimals, 0.3 is 1,071.4 units of a feature's grid).

The test runs on the raw inputs, not the profile's features, because the
profile's whitening gives every feature its own scale and hides the equal
steps; it is only kept for rows (images' edits — brightness over a uniform
background, shifts of a digit whose strokes share one grey level — make the
same shape).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["SignSteps"]

_TIE = 1e-4  # relative: float32 round trips of inputs near ±4 still tie at one step size
_ON_GRID = 0.01  # of a grid unit: how near a whole number of units a step must be


def feature_grid(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Each column's grid step, when all its values lie on one (0 when they do not): the
    smallest gap between two distinct values, if every value is a whole number of such gaps
    from the smallest."""
    out = np.zeros(x.shape[1], dtype=np.float32)
    for j in range(x.shape[1]):
        u = np.unique(x[:, j])
        if u.size < 2:
            continue
        q = float(np.diff(u).min())
        k = (u - u[0]) / q
        if float(np.abs(k - np.round(k)).max()) < 1e-3:
            out[j] = q
    return out


class SignSteps:
    """The last `memory` distinct raw inputs of one principal, and the test against them (all
    of them at once: one pass of a few array operations, not one per remembered input)."""

    def __init__(self, memory: int, at: int, grid: npt.NDArray[np.float32] | None = None) -> None:
        self.memory, self.at = memory, at
        self.gridded: npt.NDArray[np.bool_] | None = None
        if grid is not None and grid.any():
            self.gridded = grid > 0
            self.per_unit = np.where(self.gridded, 1.0 / np.where(self.gridded, grid, 1.0), 0.0)
        self.recent: npt.NDArray[np.float64] | None = None  # (memory, features), once known
        self.held = 0
        self.cursor = 0

    def step(self, row: npt.NDArray[Any]) -> bool:
        """Whether `row` (one input, flat) is a sign step from one of the recent inputs (then
        remembered, unless it repeats one verbatim): at least `at` features, and at least half
        of those that changed, moved by exactly the largest change (a gridded feature moved by
        whole grid units does not count)."""
        x = np.asarray(row, dtype=np.float64)
        if self.recent is None:
            self.recent = np.zeros((self.memory, x.size))
        hit = False
        if self.held:
            d = np.abs(self.recent[: self.held] - x)
            top = d.max(axis=1)
            if not top.all():
                return False  # a verbatim repeat: nothing new to remember or judge
            tied = d >= (top * (1 - _TIE))[:, None]
            # (most queries tie at most two features: the rest of the test is rarely needed)
            if (tied.sum(axis=1) >= self.at).any():
                hit = self._confirm(d, top, tied)
        self.recent[self.cursor] = x  # (a copy: the caller's array may be reused)
        self.cursor = (self.cursor + 1) % self.memory
        self.held = min(self.held + 1, self.memory)
        return hit

    def _confirm(
        self, d: npt.NDArray[np.float64], top: npt.NDArray[np.float64], tied: npt.NDArray[np.bool_]
    ) -> bool:
        """The whole test for a query that ties at least `at` features to some recent input."""
        if self.gridded is not None:
            units = top[:, None] * self.per_unit
            whole = self.gridded & (units > 0.5) & (np.abs(units - np.rint(units)) < _ON_GRID)
            tied = tied & ~whole
        ties = tied.sum(axis=1)
        moved = (d > (top * _TIE)[:, None]).sum(axis=1)
        return bool(np.any((ties >= self.at) & (2 * ties >= moved)))
