"""The benign profile: how ordinary traffic looks, fitted once, shipped as a small JSON file.

Every detector judges a query against what benign users send, so the feature
map (image pooling, standardisation, a PCA projection), the distance radius
that counts as "near", and the coverage cells are all fitted on benign data
and stored together. A profile is plain JSON (numbers only), so loading one
never runs code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.detect.steps import feature_grid
from bastion.errors import ConfigError, UsageError

__all__ = ["Profile", "fit_profile"]

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Profile:
    """Feature map plus calibrated radii.

    `shape` is one input row's shape; images (H, W, C) are contrast-normalised
    per query and average-pooled by `pool` before standardisation, which makes
    the features robust to brightness changes and one-pixel shifts that an
    attacker would use to blind its queries. `radius` is half the distance
    under which a benign item's nearest *different* item falls with
    probability `radius_quantile`; `cells` are k-means centroids for coverage monitoring;
    within `spread_radius`, 80 % of benign items have no other benign item.
    """

    shape: tuple[int, ...]
    pool: int
    mean: F32
    scale: F32
    components: F32
    radius: float
    radius_quantile: float
    cells: F32
    n_fit: int
    cell_radius: float = float("inf")  # benign queries lie this close to a cell (99.9 %)
    # 80 % of benign items have no other benign item this close (0: older profile, see `spread`)
    spread_radius: float = 0.0
    # rows: each feature's grid step in the fit data (0: continuous), see `steps.feature_grid`
    grid: F32 | None = None

    @property
    def spread(self) -> float:
        """The radius of a swarm: profiles fitted before it was stored use 3 × `radius`, which
        is where the 20 % quantile of benign nearest-neighbour distances falls on both
        evaluation tasks (images and rows)."""
        return self.spread_radius if self.spread_radius > 0 else 3.0 * self.radius

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    @property
    def dim(self) -> int:
        return int(self.components.shape[1])

    def pooled(self, x: npt.NDArray[Any]) -> F32:
        """Rows → pooled raw features (before standardisation)."""
        a = np.asarray(x, dtype=np.float32)
        n = a.size // int(np.prod(self.shape))
        a = a.reshape(n, *self.shape)
        if not self.is_image:
            return a.reshape(n, -1)
        flat = a.reshape(n, -1)
        mu = flat.mean(axis=1, keepdims=True)
        sd = flat.std(axis=1, keepdims=True) + 1e-3
        a = ((flat - mu) / sd).reshape(a.shape)
        h, w, c = self.shape
        p = self.pool
        a = a[:, : h - h % p, : w - w % p, :]
        a = a.reshape(n, h // p, p, w // p, p, c).mean(axis=(2, 4))
        return np.asarray(a.reshape(n, -1), dtype=np.float32)

    def encode(self, x: npt.NDArray[Any]) -> F32:
        """Rows → points in the detector's feature space (float32, `dim` columns).

        Standardisation and projection are linear, so they are folded into one small
        (pooled × dim) matrix. For images, pooling is two small products (columns, then
        rows) rather than part of that matrix: an (input × dim) fold is 400 KB for a
        32×32×3 image, and reading it evicted the history the search then scans.
        Only the per-image contrast normalisation is not linear; as pooling averages, it
        is applied to the pooled sums.
        """
        a = np.asarray(x, dtype=np.float32)
        w, pools, bias = self.__dict__.get("_fold") or self._folded()
        if pools is None:  # rows: standardisation and projection only
            out: F32 = np.dot(a.reshape(-1, w.shape[0]), w)
            out -= bias
            return out
        rows_m, cols_m, colsum = pools
        h, wc = rows_m.shape[1], cols_m.shape[0]
        n_in = h * wc
        flat = a.reshape(a.size // n_in, n_in)
        n = flat.shape[0]
        pooled = np.matmul(rows_m, np.dot(flat.reshape(n * h, wc), cols_m).reshape(n, h, -1))
        proj: F32 = np.dot(pooled.reshape(n, -1), w)
        if n == 1:
            row = flat[0]
            mu = float(row.sum()) / n_in
            ms = float(np.dot(row, row)) / n_in
            sd = float(np.sqrt(max(ms - mu * mu, 0.0))) + 1e-3
            proj -= mu * colsum
            proj /= sd
        else:
            mus = flat.mean(axis=1, keepdims=True)
            ms = np.einsum("ij,ij->i", flat, flat)[:, None] / n_in
            proj -= mus * colsum
            proj /= np.sqrt(np.maximum(ms - mus * mus, 0.0)) + 1e-3
        proj -= bias
        return proj

    def features(self, x: npt.NDArray[Any], memo: dict[Any, Any]) -> F32:
        """`encode(x)`, once per observation: detectors fitted on the same profile (similarity
        and extraction usually are) share the features through the observation's `memo`."""
        key = ("features", self.digest)
        got = memo.get(key)
        if got is None:
            got = memo[key] = self.encode(x)
        return got

    @property
    def digest(self) -> str:
        """Identifies the feature map: two profiles loaded from one file share it."""
        cached = self.__dict__.get("_digest")
        if cached is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(repr((self.shape, self.pool)).encode())
            for a in (self.mean, self.scale, self.components):
                h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
            cached = h.hexdigest()
            object.__setattr__(self, "_digest", cached)
        return cached

    def _folded(self) -> tuple[F32, tuple[F32, F32, F32] | None, F32]:
        """The (pooled × dim) matrix; for images the pooling matrices (rows: pooled rows ×
        H, columns: W·C × pooled columns·C, each averaging `pool` inputs, leftover edge
        pixels dropped) and the projection of a constant image; the bias."""
        cached = self.__dict__.get("_fold")
        if cached is None:
            w_m = (self.components / self.scale[:, None]).astype(np.float32)
            bias = ((self.mean / self.scale) @ self.components).astype(np.float32)
            pools = None
            if self.is_image:
                h, w, c = self.shape
                p = self.pool
                rows_m = np.zeros((h // p, h), dtype=np.float32)
                for i in range(h // p):
                    rows_m[i, i * p : (i + 1) * p] = 1.0 / p
                cols_1 = np.zeros((w, w // p), dtype=np.float32)
                for j in range(w // p):
                    cols_1[j * p : (j + 1) * p, j] = 1.0 / p
                cols_m = np.kron(cols_1, np.eye(c, dtype=np.float32)).astype(np.float32)
                # a constant image pools to the constant: what subtracting the mean removes
                pools = (rows_m, cols_m, w_m.sum(axis=0).astype(np.float32))
            cached = (np.ascontiguousarray(w_m), pools, bias)
            object.__setattr__(self, "_fold", cached)
        return cached

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": "bastion-detect-profile/1",
                "shape": list(self.shape),
                "pool": self.pool,
                "mean": self.mean.tolist(),
                "scale": self.scale.tolist(),
                "components": self.components.tolist(),
                "radius": self.radius,
                "radius_quantile": self.radius_quantile,
                "cells": self.cells.tolist(),
                "n_fit": self.n_fit,
                "cell_radius": self.cell_radius,
                "spread_radius": self.spread_radius,
                "grid": None if self.grid is None else self.grid.tolist(),
            }
        )

    def save(self, path: Path | str) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: Path | str) -> Profile:
        p = Path(path)
        try:
            doc = json.loads(p.read_text())
            if doc.get("format") != "bastion-detect-profile/1":
                raise ValueError("not a bastion detector profile (missing format marker)")
            f32 = np.float32
            return cls(
                shape=tuple(int(v) for v in doc["shape"]),
                pool=int(doc["pool"]),
                mean=np.asarray(doc["mean"], dtype=f32),
                scale=np.asarray(doc["scale"], dtype=f32),
                components=np.asarray(doc["components"], dtype=f32),
                radius=float(doc["radius"]),
                radius_quantile=float(doc["radius_quantile"]),
                cells=np.asarray(doc["cells"], dtype=f32),
                n_fit=int(doc["n_fit"]),
                cell_radius=float(doc.get("cell_radius", "inf")),
                spread_radius=float(doc.get("spread_radius", 0.0)),
                grid=None if doc.get("grid") is None else np.asarray(doc["grid"], dtype=f32),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"cannot read detector profile {p}: {exc}",
                path=str(p),
                hint="create one with `bastion detect fit --data benign.npy -o profile.json`",
            ) from None


def fit_profile(
    x: npt.NDArray[Any],
    *,
    shape: tuple[int, ...] | None = None,
    dim: int = 32,
    pool: int = 4,
    radius_quantile: float = 0.01,
    radius_factor: float = 0.5,
    n_cells: int = 64,
    spread_quantile: float = 0.2,
    seed: int = 0,
) -> Profile:
    """Fit the feature map and calibrate the near-radius on benign rows.

    The radius is `radius_factor` times a low quantile of nearest-neighbour
    distances *between distinct benign items*: closer than that, two queries
    are almost surely derived from one another. The swarm radius is the
    `spread_quantile` of the same distances: several recent queries that close
    to one another, yet not edits of one another, are rare among benign items.
    """
    a = np.asarray(x, dtype=np.float32)
    if a.ndim < 2 or a.shape[0] < 10:
        raise UsageError(
            f"need at least 10 benign rows to fit a detector profile, got shape {a.shape}",
            hint="pass benign inputs as an (n, ...) array with n >= 10",
        )
    row_shape = shape or tuple(int(s) for s in a.shape[1:])
    if len(row_shape) == 2:  # grey images (H, W) → (H, W, 1)
        row_shape = (*row_shape, 1)
    if int(np.prod(row_shape)) != int(np.prod(a.shape[1:])):
        raise UsageError(f"shape {row_shape} does not match benign rows of shape {a.shape[1:]}")
    if len(row_shape) not in (1, 3):
        row_shape = (int(np.prod(row_shape)),)
    rng = np.random.default_rng(seed)
    base = Profile(
        row_shape, pool, np.zeros(1, np.float32), np.ones(1, np.float32),
        np.zeros((1, 1), np.float32), 0.0, radius_quantile, np.zeros((1, 1), np.float32), 0,
    )  # fmt: skip
    raw = base.pooled(a)
    mean = raw.mean(axis=0)
    scale = raw.std(axis=0) + 1e-6 * (raw.std() + 1e-6)
    z = (raw - mean) / scale
    _, _, vt = np.linalg.svd(z[rng.permutation(len(z))[:4000]], full_matrices=False)
    comps = vt[: min(dim, vt.shape[0])].T.astype(np.float32)
    e = (z @ comps).astype(np.float32)
    sample = e[rng.permutation(len(e))[:3000]]
    sq = (sample * sample).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2 * sample @ sample.T
    np.fill_diagonal(d2, np.inf)
    d = np.sqrt(np.maximum(d2, 0.0))
    d[d <= 1e-4 * (np.median(d[np.isfinite(d)]) + 1e-9)] = np.inf  # exact duplicates
    nn = d.min(axis=1)
    nn = nn[np.isfinite(nn)]
    radius = radius_factor * float(np.quantile(nn, radius_quantile)) if nn.size else 1.0
    spread = float(np.quantile(nn, spread_quantile)) if nn.size else 3.0 * radius
    cells = _kmeans(e, min(n_cells, len(e)), rng)
    to_cell = np.sqrt(((e[:, None, :] - cells[None, :, :]) ** 2).sum(-1).min(1))
    cell_radius = float(np.quantile(to_cell, 0.999)) * 1.25
    # (from the float64 rows: float32 rounding would hide a fine grid)
    grid = (
        feature_grid(np.asarray(x, np.float64).reshape(len(a), -1)) if len(row_shape) == 1 else None
    )
    return Profile(
        row_shape, pool, mean, scale, comps, radius, radius_quantile, cells, len(a), cell_radius,
        spread, grid,
    )  # fmt: skip


def _kmeans(e: F32, k: int, rng: np.random.Generator, iters: int = 15) -> F32:
    c = e[rng.choice(len(e), size=k, replace=False)].copy()
    for _ in range(iters):
        lab = ((e[:, None, :] - c[None, :, :]) ** 2).sum(-1).argmin(1)
        for j in range(k):
            m = lab == j
            if m.any():
                c[j] = e[m].mean(0)
    return c.astype(np.float32)
