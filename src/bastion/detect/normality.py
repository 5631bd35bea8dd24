"""The Shapiro–Wilk W statistic, cheap enough to run inline every few queries.

PRADA's test needs only W (the alarm is a fixed level of W, not a p-value),
and the weights W is built from depend on the sample size alone. scipy's
`shapiro` recomputes them and goes through its generic argument handling on
every call, which made the extraction check cost about a millisecond; here
the weights are computed once per size (Royston's 1992 approximation, the one
scipy's SWILK routine uses) and a check is a sort and two dot products.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

__all__ = ["shapiro_w"]

# Royston (1992): polynomial corrections in u = 1/sqrt(n) of the two largest weights
_LAST = (0.0, 0.221157, -0.147981, -2.071190, 4.434685, -2.706056)
_NEXT = (0.0, 0.042981, -0.293762, -1.752461, 5.682633, -3.582633)


def _poly(c: tuple[float, ...], u: float) -> float:
    return sum(ci * u**i for i, ci in enumerate(c))


@lru_cache(maxsize=512)
def _weights(n: int) -> npt.NDArray[np.float64]:
    """The n weights of the ordered sample (antisymmetric: a[i] = -a[n-1-i])."""
    if n == 3:
        a = np.zeros(3)
        a[0], a[2] = -np.sqrt(0.5), np.sqrt(0.5)
        return a
    m = ndtri((np.arange(1, n + 1) - 0.375) / (n + 0.25))
    mm = float(m @ m)
    u = 1.0 / np.sqrt(n)
    a = np.empty(n)
    an = m[-1] / np.sqrt(mm) + _poly(_LAST, u)
    if n > 5:
        an1 = m[-2] / np.sqrt(mm) + _poly(_NEXT, u)
        phi = (mm - 2 * m[-1] ** 2 - 2 * m[-2] ** 2) / (1 - 2 * an**2 - 2 * an1**2)
        a[2:-2] = m[2:-2] / np.sqrt(phi)
        a[-1], a[-2], a[0], a[1] = an, an1, -an, -an1
    else:
        phi = (mm - 2 * m[-1] ** 2) / (1 - 2 * an**2)
        a[1:-1] = m[1:-1] / np.sqrt(phi)
        a[-1], a[0] = an, -an
    return a


def shapiro_w(x: npt.NDArray[np.float64], *, presorted: bool = False) -> float:
    """W for a sample of at least 3 values that are not all equal (1 means normal-looking);
    `presorted` skips the sort for a sample already in ascending order."""
    s = np.asarray(x, dtype=np.float64)
    if not presorted:
        s = np.sort(s)
    n = s.size
    if n < 3:
        raise ValueError("the Shapiro-Wilk statistic needs at least 3 values")
    centred = s - float(s.sum()) / n
    ss = float(np.dot(centred, centred))
    if ss <= 0.0:
        raise ValueError("the Shapiro-Wilk statistic is undefined for a constant sample")
    num = float(np.dot(_weights(n), s))
    return min(num * num / ss, 1.0)
