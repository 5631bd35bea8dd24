"""Attack-in-progress detection against issue 7's targets, measured in one run.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/detection.py [--quick] [--html f.html]

Needs the Adversarial Robustness Toolbox for the independent attack
implementations (benchmark/test-only, in no extra):
`pip install adversarial-robustness-toolbox`.

Prints, per task and detector configuration: detection rate and queries to
first detection for every non-adaptive attack (bastion's and ART's), the
benign false-positive rate over principals, the adaptive attacker's success at
a 10,000-query budget, whether extraction was detected before the copy reached
fidelity 0.8, and per-query cost with 10,000 queries in history; each next to
its target with a verdict. Figures that miss their target are printed as such.

By default each task runs the configuration the guard gives its input type
(images `similarity+extraction`, rows `rows+extraction`) against 10,000 benign
principals and 3,000 more after the attacks: the target is a rate of 0.1 %,
which a thousand principals cannot tell from 0.3 % (one flagged user either
way). `--compare` adds the other configurations, `--benign N` and
`--benign-after N` change the samples.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bastion.detect.calibration import (  # noqa: E402
    campaign_peaks,
    level_for,
    prada_levels,
    responses,
    trigger_for,
)
from bastion.detect.campaigns import BASTION_ATTACKS  # noqa: E402
from bastion.detect.configurations import (  # noqa: E402
    CONFIGURATIONS,
    DOMAIN_CONFIGURATION,
    detectors,
)
from bastion.detect.evaluation import (  # noqa: E402
    EvalPlan,
    EvalResult,
    evaluate,
)
from bastion.detect.extraction import ExtractionDetector, ExtractionOptions  # noqa: E402
from bastion.detect.fingerprint import FingerprintDetector, FingerprintOptions  # noqa: E402
from bastion.detect.profile import fit_profile  # noqa: E402
from bastion.detect.report import render_html  # noqa: E402
from bastion.detect.similarity import SimilarityDetector, SimilarityOptions  # noqa: E402
from bastion.detect.streams import MIN_QUERIES, TASKS, load_task  # noqa: E402
from bastion.guard.policies.detection import Observation  # noqa: E402
from bastion.guard.request import Prediction  # noqa: E402
from bastion.guard.stores.memory import MemoryStore  # noqa: E402


class Cost(NamedTuple):
    """One stack's per-query cost (ms): the median call and the amortised cost (the median of
    `check_every`-call means: each block holds one extraction check), on the wall clock and on
    the thread's CPU clock; memory held per principal (bytes)."""

    name: str
    median: float
    amortised: float
    cpu_median: float
    cpu_amortised: float
    memory: int


def cost(task_name: str, history: int = 10_000, calls: int = 1000, rounds: int = 5) -> list[Cost]:
    """Per observe() with `history` queries already held per principal and globally: each
    detector alone, and the stack the guard runs (similarity and extraction on the same
    observation, sharing its features).

    The stacks are timed in `rounds` interleaved rounds (each round times `calls / rounds` calls
    of every stack in turn), so a busy spell of a shared host spreads over all of them instead
    of landing on one; the thread's CPU clock, which does not run while another process holds
    the core, is printed beside the wall clock."""
    task = load_task(task_name)
    prof = fit_profile(task.x_fit, shape=task.shape)
    rng = np.random.default_rng(0)
    base = task.x_test[rng.integers(len(task.x_test), size=history)]
    fill = np.clip(base + rng.normal(0, 0.02, base.shape), task.lower, task.upper)
    labels = task.predict_proba(fill).argmax(1)
    conf = DOMAIN_CONFIGURATION[task.domain]  # the options the guard plan writes
    sim_opts = {
        k: v
        for e in CONFIGURATIONS[conf]
        if e["kind"] == "similarity"
        for k, v in e.items()
        if k not in ("kind", "profile")
    }

    def similarity() -> SimilarityDetector:
        return SimilarityDetector(SimilarityOptions(profile="-", **sim_opts), profile=prof)

    def extraction() -> ExtractionDetector:
        return ExtractionDetector(ExtractionOptions(profile="-"), profile=prof)

    stacks: list[tuple[str, list[object]]] = [
        ("similarity", [similarity()]),
        # worst case for `similarity`: the global history is full of *another* principal's
        # suspect queries near this one's, so both searches run in full on every query
        ("similarity, global full", [similarity()]),
        ("extraction", [extraction()]),
        (f"{conf} (the guard's stack)", [similarity(), extraction()]),
        # most principals' rings are not full: slices of a ring's blocks are then strided
        (f"{conf}, ring 60 % full", [similarity(), extraction()]),
    ]
    if task.domain == "image":
        stacks.append(("fingerprint", [FingerprintDetector(FingerprintOptions(salt="bench"))]))
    stores = []
    for name, dets in stacks:
        store = MemoryStore()
        stores.append(store)
        held = history * 6 // 10 if name.endswith("% full") else history
        for k in range(held):  # one principal fills its own and the global history
            obs = Observation("p", {"x": fill[k][None]}, Prediction(labels[k : k + 1]), 0.0)
            for det in dets:
                det.observe(obs, store)  # type: ignore[attr-defined]
        if name.endswith("global full"):
            for k in range(history):
                x = fill[k][None] + rng.normal(0, 0.005, fill[k][None].shape)
                obs = Observation("q", {"x": x}, Prediction(labels[k : k + 1]), 0.0)
                for det in dets:
                    det.observe(obs, store)  # type: ignore[attr-defined]
    queries = []
    for k in range(calls):
        x = fill[k][None] + rng.normal(0, 0.01, fill[k][None].shape)
        queries.append(Observation("p", {"x": x}, Prediction(labels[k : k + 1]), 0.0))
    every = ExtractionOptions(profile="-").check_every
    per = max(every, calls // rounds // every * every)  # whole blocks per round
    wall: list[list[float]] = [[] for _ in stacks]
    cpu: list[list[float]] = [[] for _ in stacks]
    for start in range(0, calls - per + 1, per):
        for (_, dets), store, w, c in zip(stacks, stores, wall, cpu, strict=True):
            for obs in queries[start : start + per]:
                t0, c0 = time.perf_counter(), time.thread_time()
                for det in dets:
                    det.observe(obs, store)  # type: ignore[attr-defined]
                c.append(time.thread_time() - c0)
                w.append(time.perf_counter() - t0)

    def figures(times: list[float]) -> tuple[float, float]:
        ms = 1000 * np.asarray(times)
        blocks = ms[: len(ms) // every * every].reshape(-1, every).mean(axis=1)
        return float(np.median(ms)), float(np.median(blocks))

    out = []
    for (name, dets), w, c in zip(stacks, wall, cpu, strict=True):
        mem = sum(int(getattr(d, "memory_bytes", lambda: 0)()) for d in dets)
        out.append(Cost(f"{task_name}/{name}", *figures(w), *figures(c), mem))
    return out


def cost_table(tasks: tuple[str, ...], calls: int) -> None:
    print("\n== per-query cost with 10,000 queries in history (target <= 0.3 ms) ==")
    every = ExtractionOptions(profile="-").check_every
    print(f"load average now: {os.getloadavg()}; {calls} calls per row in 5 interleaved rounds: "
          f"the median call and the median of {every}-call means (amortised: extraction checks "
          f"every {every}th query), wall clock, then the thread's CPU clock")  # fmt: skip
    for task_name in tasks:
        for c in cost(task_name, calls=calls):
            kib = c.memory / 1024
            print(f"{c.name:50} wall {c.median:6.3f} / {c.amortised:6.3f} ms, "
                  f"cpu {c.cpu_median:6.3f} / {c.cpu_amortised:6.3f} ms -> "
                  f"{verdict(c.amortised <= 0.3)}; {kib:.0f} KiB per principal")  # fmt: skip


def calibrate(tasks: tuple[str, ...], n: int, configurations: tuple[str, ...] | None) -> None:
    """Thresholds from benign streams drawn from the fit data (disjoint from the evaluation's
    benign streams): false positives per similarity trigger and per PRADA alarm level, the
    trigger and level for 0.1 %, and each named configuration's flagged principals end to end
    (through a guard with the evaluation's actions)."""
    print(f"calibration: {n} benign principals per task, drawn from the profile's fit data")
    with tempfile.TemporaryDirectory(prefix="bastion-calibrate-") as tmp:
        for task_name in tasks:
            task = load_task(task_name)
            profile = fit_profile(task.x_fit, shape=task.shape)
            for conf in configurations or (DOMAIN_CONFIGURATION[task.domain],):
                sim = next(e for e in CONFIGURATIONS[conf] if e["kind"] == "similarity")
                weights = sim.get("weights", {})
                peaks = campaign_peaks(task, profile, n, weights=weights)
                rates = "  ".join(f"{t}: {int((peaks >= t).sum())}" for t in (2.2, 2.4, 2.6, 2.8))
                print(f"{task_name:9} {conf:22} similarity flagged per trigger  {rates};  "
                      f"smallest trigger for <= 0.1 %: {trigger_for(peaks, 0.001):g}")  # fmt: skip
            levels = prada_levels(task, profile, n)
            rates = "  ".join(f"{w}: {int((levels < w).sum())}" for w in (0.45, 0.55, 0.65, 0.75))
            print(f"{task_name:9} PRADA flagged per alarm level  {rates};  lowest "
                  f"{levels.min():.3f}; highest level for <= 0.1 %: "
                  f"{level_for(levels, 0.001):g}")  # fmt: skip
            path = Path(tmp) / f"{task_name}.profile.json"
            profile.save(path)
            for conf in configurations or (DOMAIN_CONFIGURATION[task.domain],):
                entries = detectors(conf, path)
                hit, levels, top = responses(task, entries, n)
                print(f"{task_name:9} {conf:22} end to end: {len(hit)}/{n} flagged "
                      f"({len(hit) / n:.2%}) {' '.join(hit[:10])}")  # fmt: skip
                print(f"{task_name:9} {conf:22} principals per action level reached: "
                      f"{_levels(levels)}; highest evidence totals {top}")  # fmt: skip


def _result(d: dict[str, object]) -> EvalResult:
    d = {k: v for k, v in d.items() if k != "fpr"}
    return EvalResult(**d)  # type: ignore[arg-type]


def _levels(counts: dict[str, int]) -> str:
    return ", ".join(f"{action} {n}" for action, n in counts.items())


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer runs (a smoke test)")
    ap.add_argument("--html", default="detect-bench.html")
    ap.add_argument("--fingerprint", action="store_true", help="also the fingerprint detector")
    ap.add_argument("--json", default="detect-bench.json", help="raw results (written first)")
    ap.add_argument("--from-json", default=None, help="re-print a previous run's results")
    # subsets, for iterating on one detector or stream (the defaults are the full run)
    ap.add_argument("--task", action="append", choices=list(TASKS), default=None)
    ap.add_argument("--configuration", action="append", default=None, help="repeatable")
    ap.add_argument(
        "--compare", action="store_true", help="also the configurations other input types use"
    )
    ap.add_argument("--attack", action="append", default=None, help="bastion attack; repeatable")
    ap.add_argument("--no-art", action="store_true", help="skip ART's attacks")
    ap.add_argument("--runs", type=int, default=None, help="runs per attack")
    ap.add_argument("--benign", type=int, default=None, help="benign principals")
    ap.add_argument("--adaptive-runs", type=int, default=None, help="0 skips the adaptive one")
    ap.add_argument(
        "--benign-after", type=int, default=None, help="benign principals after the attacks"
    )
    ap.add_argument("--no-extraction", action="store_true")
    ap.add_argument("--no-cost", action="store_true", help="skip the 10,000-history cost table")
    ap.add_argument("--cost-only", action="store_true", help="only the cost table")
    ap.add_argument(
        "--calibrate",
        type=int,
        default=0,
        metavar="N",
        help="only choose the trigger from N benign principals drawn from the fit data",
    )
    args = ap.parse_args()
    if args.calibrate:
        confs = tuple(args.configuration) if args.configuration else None
        calibrate(tuple(args.task or ("digits32", "cancer")), args.calibrate, confs)
        return
    q = args.quick
    if args.cost_only:
        cost_table(tuple(args.task or ("digits32", "cancer")), 300 if q else 1000)
        return
    tasks = tuple(args.task or TASKS)
    extra = ("fingerprint",) if q or args.fingerprint else ()
    compare = ("similarity+extraction", "rows+extraction", "strict+extraction")

    def configurations(task_name: str) -> tuple[str, ...]:
        if args.configuration:
            return tuple(args.configuration)
        if args.compare:
            return compare + extra
        return (DOMAIN_CONFIGURATION[load_task(task_name).domain], *extra)

    plans = [
        EvalPlan(
            tasks=(task_name,),
            configurations=configurations(task_name),
            attacks=tuple(args.attack or BASTION_ATTACKS),
            art=not args.no_art,
            runs=args.runs or (2 if q else 6),
            budget=1000,
            benign=args.benign if args.benign is not None else (50 if q else 10_000),
            adaptive_runs=args.adaptive_runs
            if args.adaptive_runs is not None
            else (2 if q else 32),
            adaptive_budget=10_000,
            adaptive_accounts=10,
            extraction=() if args.no_extraction else ("natural", "random", "synthetic"),
            extraction_budget=500 if q else 600,
            benign_after=(
                args.benign_after if args.benign_after is not None else (50 if q else 3000)
            ),
        )
        for task_name in tasks
    ]
    plan = plans[0]
    t0 = time.time()
    if args.from_json:
        results = [_result(d) for d in json.loads(Path(args.from_json).read_text())]
    else:
        results = []
        for one in plans:
            results += evaluate(
                one, progress=lambda m: print(f"[{time.time() - t0:5.0f}s] {m}", file=sys.stderr)
            )
        Path(args.json).write_text(json.dumps([r.to_dict() for r in results], default=str))
    every = tuple(dict.fromkeys(c for p in plans for c in p.configurations))
    shown = {**plan.__dict__, "tasks": tasks, "configurations": every}
    Path(args.html).write_text(render_html(results, shown))
    print(f"\nload average during the run: {os.getloadavg()}  (2-core machine, shared)")
    for res in results:
        print(f"\n== {res.task} / {res.configuration} ==")
        print(f"{'attack':28} {'detected':>9} {'median q':>9} {'p90 q':>7} "
              f"{'succ on':>8} {'succ off':>9}  target: 100 % detected, median <= 10")  # fmt: skip
        non_adaptive = [r for r in res.rows if "adaptive" not in r["source"]]
        for r in res.rows:
            med, p90 = r["queries_to_detection_median"], r["queries_to_detection_p90"]
            off = r["success_without_detector"]
            print(
                f"{r['attack'] + ' (' + r['source'] + ')':28} {r['detected']:>4}/{r['runs']:<4} "
                f"{'-' if med is None else f'{med:g}':>9} {'-' if p90 is None else f'{p90:g}':>7} "
                f"{r['success_with_detector']:>8.0%} {'-' if off is None else f'{off:.0%}':>9}"
            )
        det = [q for r in non_adaptive for q in r["queries_to_detection"]]
        runs = sum(r["runs"] for r in non_adaptive)
        med = float(np.median(det)) if det else float("nan")
        print(f"non-adaptive: {len(det)}/{runs} runs detected, median {med:g} queries -> "
              f"{verdict(len(det) == runs and med <= 10)}")  # fmt: skip
        print(f"benign FPR: {res.benign_flagged}/{res.benign_principals} principals = "
              f"{res.fpr:.2%} (target <= 0.1 %) -> {verdict(res.fpr <= 0.001)}")  # fmt: skip
        if res.benign_levels:
            print("benign principals per action level reached: " + _levels(res.benign_levels)
                  + (f"; after the attacks: {_levels(res.benign_after_levels)}"
                     if res.benign_after_levels else ""))  # fmt: skip
        if res.benign_after_principals:
            after = res.benign_after_flagged / res.benign_after_principals
            print(f"benign users after the attacks: {res.benign_after_flagged}/"
                  f"{res.benign_after_principals} flagged = {after:.2%} (target <= 0.1 %) -> "
                  f"{verdict(after <= 0.001)}")  # fmt: skip
            n = res.benign_principals + res.benign_after_principals
            hit = res.benign_flagged + res.benign_after_flagged
            print(f"all benign principals: {hit}/{n} flagged = {hit / n:.3%} (target <= 0.1 %) "
                  f"-> {verdict(hit / n <= 0.001)}")  # fmt: skip
        for r in res.rows:
            if "adaptive" in r["source"]:
                print(f"adaptive success at {plan.adaptive_budget} queries: "
                      f"{r['success_with_detector']:.0%} of {r['runs']} (without detector "
                      f"{r['success_without_detector']:.0%}; target <= 4 %) -> "
                      f"{verdict(r['success_with_detector'] <= 0.04)}")  # fmt: skip
        for e in res.extraction:
            ok = e["detected_at"] is not None and e["fidelity_at_detection"] < 0.8
            best = max((f for _, f in e["curve"]), default=0.0)
            reach = e["queries_to_fidelity_0.8"]
            if ok:
                outcome = verdict(ok)
            elif reach is None:  # a copy that never got good: the target cannot fail or pass
                outcome = f"n/a: the copy never reached 0.8 (best {best:.2f})"
            elif reach < MIN_QUERIES:
                outcome = (f"unattainable: 0.8 after {reach} answers, fewer than any benign "
                           f"user sends ({MIN_QUERIES})")  # fmt: skip
            else:
                outcome = verdict(ok)
            print(f"extraction {e['strategy']:9}: detected at {e['detected_at']}, fidelity then "
                  f"{e['fidelity_at_detection']:.2f}, fidelity 0.8 at "
                  f"{e['queries_to_fidelity_0.8']} -> {outcome}")  # fmt: skip
        print(f"detector cost inline (benign traffic): {res.cost_ms:.3f} ms/query; memory "
              f"per principal at most {res.memory_bytes_per_principal / 1024:.0f} KiB (a full "
              f"history), held by the {res.benign_principals} benign ones "
              f"{res.memory_bytes_held / 1024:.1f} KiB on average")  # fmt: skip
    if args.no_cost:
        return
    cost_table(tasks, 300 if q else 1000)
    print(f"\nreport: {args.html}  ({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
