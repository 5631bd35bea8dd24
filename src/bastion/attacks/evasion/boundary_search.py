"""Binary search to the decision boundary, shared by the decision-based attacks.

Given a clean point and an adversarial one per row, it narrows the segment (L2:
a blend; L∞: a box around the clean point) until the gap is below `tol`,
spending one query per unfinished row per step, all rows in one batch.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bastion.attacks.base import Norm
from bastion.attacks.evasion.book import Book

__all__ = ["to_boundary"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _point(book: Book, rows: IntArray, adv: FloatArray, t: FloatArray, norm: Norm) -> FloatArray:
    x0 = book.x0[rows]
    if norm is Norm.L2:
        out = (1.0 - t[:, None]) * x0 + t[:, None] * adv
    else:
        out = np.clip(adv, x0 - t[:, None], x0 + t[:, None])
    return book.space.project(out, x0)


def to_boundary(
    book: Book, rows: IntArray, adv: FloatArray, norm: Norm, tol: FloatArray | float
) -> FloatArray:
    """Adversarial points on the boundary between `book.x0[rows]` and `adv`."""
    if rows.size == 0:
        return adv
    hi = np.ones(rows.size) if norm is Norm.L2 else Norm.LINF.of(adv - book.x0[rows])
    lo = np.zeros(rows.size)
    tol_arr = np.broadcast_to(np.asarray(tol, dtype=np.float64), rows.shape)
    for _ in range(40):
        todo = np.flatnonzero((hi - lo > tol_arr) & (book.remaining(rows) > 0))
        if todo.size == 0:
            break
        mid = (hi[todo] + lo[todo]) / 2.0
        is_adv = book.labels(rows[todo], _point(book, rows[todo], adv[todo], mid, norm))
        hi[todo] = np.where(is_adv, mid, hi[todo])
        lo[todo] = np.where(is_adv, lo[todo], mid)
    return _point(book, rows, adv, hi, norm)
