"""The attacker's data from a file of plain numbers: `.npz` (never pickled) or `.csv`.

A `.npz` may hold `x` (required), `y`, `pool`, `x_eval`/`y_eval`,
`members_x`/`members_y`, `nonmembers_x`/`nonmembers_y`, `targets`, and
`lower`/`upper` (per-feature bounds). A `.csv` holds one row per record,
numbers only, with an optional header; a column named `label`, `y` or
`target` is taken as the label. Object arrays are refused: loading one would
mean unpickling, which can run code.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.attacks.base import AttackData
from bastion.attacks.space import Constraints, Domain, InputSpace
from bastion.errors import ConfigError

__all__ = ["load_data"]

_KEYS = {
    "x", "y", "pool", "x_eval", "y_eval", "members_x", "members_y",
    "nonmembers_x", "nonmembers_y", "targets", "lower", "upper",
}  # fmt: skip
_LABELS = ("label", "y", "target", "class")


def _read_npz(path: Path) -> dict[str, npt.NDArray[Any]]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except ValueError as exc:  # object arrays need pickle: refused
        raise ConfigError(
            f"cannot read without unpickling: {exc}",
            path=str(path),
            hint="save plain numeric arrays (np.savez with float/int arrays)",
        ) from None
    except OSError as exc:
        raise ConfigError(f"not a readable .npz file: {exc}", path=str(path)) from None
    unknown = set(arrays) - _KEYS
    if unknown:
        raise ConfigError(
            f"unknown arrays {sorted(unknown)}",
            path=str(path),
            hint=f"use only: {', '.join(sorted(_KEYS))}",
        )
    if "x" not in arrays:
        raise ConfigError("no array named 'x'", path=str(path), hint="np.savez(path, x=..., y=...)")
    return arrays


def _read_csv(path: Path) -> dict[str, npt.NDArray[Any]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read CSV: {exc}", path=str(path)) from None
    if not rows:
        raise ConfigError("the CSV file is empty", path=str(path))
    header: list[str] | None = None
    try:
        [float(c) for c in rows[0]]
    except ValueError:
        header, rows = [c.strip().lower() for c in rows[0]], rows[1:]
    values = []
    for i, row in enumerate(rows, start=2 if header else 1):
        try:
            values.append([float(c) for c in row])
        except ValueError:
            raise ConfigError(
                "non-numeric value", path=str(path), line=i, hint="the CSV must hold numbers only"
            ) from None
    if len({len(r) for r in values}) > 1:
        raise ConfigError("rows have different numbers of columns", path=str(path))
    table = np.asarray(values, dtype=np.float64)
    label_col = next((header.index(n) for n in _LABELS if header and n in header), None)
    if label_col is None:
        return {"x": table}
    return {"x": np.delete(table, label_col, axis=1), "y": table[:, label_col]}


def _rows(a: npt.NDArray[Any] | None, dim: int | None = None) -> npt.NDArray[np.float64] | None:
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(a.shape[0], -1) if dim is None else a.reshape(-1, dim)


def _labels(a: npt.NDArray[Any] | None) -> npt.NDArray[np.int64] | None:
    return None if a is None else np.asarray(a).astype(np.int64).reshape(-1)


def load_data(
    path: Path,
    *,
    domain: Domain = Domain.IMAGE,
    bounds: tuple[float, float] | None = None,
    shape: tuple[int, ...] | None = None,
    constraints: Constraints | None = None,
    points: int = 100,
    seed: int = 0,
) -> AttackData:
    """Load and split: the first `points` rows are attacked, a held-out fifth measures fidelity."""
    if not path.is_file():
        raise ConfigError("no such file", path=str(path), hint="--data takes a .npz or .csv file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = _read_npz(path)
    elif suffix == ".csv":
        arrays = _read_csv(path)
    else:
        raise ConfigError(
            f"unsupported data format {suffix!r}", path=str(path), hint=".npz or .csv"
        )
    x = _rows(arrays["x"])
    assert x is not None
    if not np.isfinite(x).all():
        raise ConfigError("x holds NaN or infinite values", path=str(path))
    dim = x.shape[1]
    y = _labels(arrays.get("y"))
    if "lower" in arrays and "upper" in arrays:
        lo, hi = arrays["lower"].reshape(-1), arrays["upper"].reshape(-1)
        space = InputSpace.build(
            dim, (lo.tolist(), hi.tolist()), shape=shape, domain=domain, constraints=constraints
        )
    else:
        b = bounds or (float(x.min()), float(x.max()))
        space = InputSpace.build(dim, b, shape=shape, domain=domain, constraints=constraints)
    if space.violations(x).any():
        raise ConfigError(
            f"{int(space.violations(x).sum())} rows of x lie outside the bounds or constraints",
            path=str(path),
            hint="fix --bounds or the lower/upper arrays",
        )
    rng = np.random.default_rng(seed)
    x_eval, y_eval = _rows(arrays.get("x_eval"), dim), _labels(arrays.get("y_eval"))
    pool = _rows(arrays.get("pool"), dim)
    if x_eval is None and x.shape[0] >= 10:
        order = rng.permutation(x.shape[0])
        cut = max(1, x.shape[0] // 5)
        held, kept = order[:cut], order[cut:]
        x_eval, y_eval = x[held], (None if y is None else y[held])
        x, y = x[kept], (None if y is None else y[kept])
    members = nonmembers = None
    if "members_x" in arrays and "nonmembers_x" in arrays:
        mx, nx = _rows(arrays["members_x"], dim), _rows(arrays["nonmembers_x"], dim)
        my, ny = _labels(arrays.get("members_y")), _labels(arrays.get("nonmembers_y"))
        if my is None or ny is None or mx is None or nx is None:
            raise ConfigError("members_y and nonmembers_y are needed too", path=str(path))
        members, nonmembers = (mx, my), (nx, ny)
    targets = _labels(arrays.get("targets"))
    n = min(points, x.shape[0])
    return AttackData(
        space=space,
        x=x[:n],
        y=None if y is None else y[:n],
        pool=pool if pool is not None else x,
        x_eval=x_eval,
        y_eval=y_eval,
        members=members,
        nonmembers=nonmembers,
        targets=None if targets is None else targets[:n],
        n_classes=None if y is None else int(y.max()) + 1,
        labelled=None if y is None else (x, y),
    )
