"""The global history's search, exact against faiss HNSW graphs, as the history grows.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/global_index.py [--sizes 10000 100000]

For each history size, two rings of that capacity are filled with the same
benign queries (digits32 users' items, repeats, edits and bursts, encoded by the
benign profile: 32 features), then both answer the next `--queries` queries,
each query searched and then added, as the guard does. Printed per size: time
per query (search + add) for each index side by side and their ratio, and the
recall of the graphs: the share of queries whose k nearest neighbours are the
exact search's, and the share of the entries truly within the radius (measured
by brute force) that the graphs return as candidates. Needs the `ann` extra
(faiss-cpu).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bastion.detect.history import Entry, Ring  # noqa: E402
from bastion.detect.profile import fit_profile  # noqa: E402
from bastion.detect.streams import benign_streams, load_task  # noqa: E402


def vectors(n: int, chunk: int = 400) -> Iterator[np.ndarray]:
    """`n` encoded benign queries, generated a few hundred users at a time (the images of
    all of them would not fit in memory)."""
    task = load_task("digits32")
    profile = fit_profile(task.x_fit, shape=task.shape)
    yield np.asarray([profile.radius], dtype=np.float32)
    seed, left = 1000, n
    while left > 0:
        x = np.concatenate([s.queries for s in benign_streams(task, chunk, seed=seed)])[:left]
        yield profile.encode(x)
        left -= len(x)
        seed += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 400_000])
    ap.add_argument("--queries", type=int, default=2000)
    args = ap.parse_args()
    largest = max(args.sizes)
    t0 = time.time()
    it = vectors(largest + args.queries)
    radius = float(next(it)[0])
    allv = np.concatenate(list(it))
    print(f"{len(allv)} digits32 benign queries encoded ({allv.shape[1]} features) "
          f"in {time.time() - t0:.0f}s; radius {radius:.3f}", file=sys.stderr)  # fmt: skip
    print(f"{'history':>9} {'exact ms':>9} {'hnsw ms':>8} {'hnsw/exact':>11} "
          f"{'same k near':>12} {'neighbours found':>17} {'fill s (hnsw)':>14}")  # fmt: skip
    for size in args.sizes:
        fill, probe = allv[:size], allv[size : size + args.queries]
        dim = allv.shape[1]
        rings = {"exact": Ring(size, dim), "hnsw": Ring(size, dim, index="hnsw")}
        fill_s = {}
        for name, ring in rings.items():
            t = time.perf_counter()
            for i, v in enumerate(fill):
                ring.add(Entry(v, float(i), i // 40, 0, 0, 0.0))
            fill_s[name] = time.perf_counter() - t
        spent = {name: 0.0 for name in rings}
        got: dict[str, list[np.ndarray]] = {name: [] for name in rings}
        true = found = 0
        graphs = rings["hnsw"].graphs
        assert graphs is not None
        for j, v in enumerate(probe):  # alternate the two, so a busy spell hits both alike
            # the entries truly within the radius (measured from differences) against the
            # graphs' candidates: what the approximation misses, before any other rule
            held = rings["exact"].vec[: rings["exact"].size]
            near = set(np.flatnonzero(np.square(held - v).sum(1) <= radius * radius).tolist())
            true += len(near)
            found += len(near & set(graphs.candidates(v, radius * radius, size).tolist()))
            for name, ring in rings.items():
                t = time.perf_counter()
                nb = ring.nearest(v, 8, radius, now=float(size + j))
                ring.add(Entry(v, float(size + j), (size + j) // 40, 0, 0, 0.0))
                spent[name] += time.perf_counter() - t
                got[name].append(nb.dist)
        same = sum(
            int(a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-6))
            for a, b in zip(got["exact"], got["hnsw"], strict=True)
        )
        ms = {name: 1000 * s / len(probe) for name, s in spent.items()}
        print(f"{size:>9} {ms['exact']:>9.3f} {ms['hnsw']:>8.3f} {ms['hnsw'] / ms['exact']:>11.2f} "
              f"{same / len(probe):>12.2%} {found / max(true, 1):>17.2%} "
              f"{fill_s['hnsw']:>14.0f}")  # fmt: skip
        del rings
        gc.collect()
    print(f"({len(probe)} queries per size, each searched then added; "
          f"{time.time() - t0:.0f}s in all)")  # fmt: skip


if __name__ == "__main__":
    main()
