"""How much the `noise` action's scale holds back the adaptive attacker, victim by victim.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/noise_scale.py \
        [--task rows8] [--scales 0.05,0.15,0.3] [--seeds 8] [--victims 23,46,50]

From the first evidence the guard answers a principal with noisy scores (labels kept); labels
only come three units of evidence later. An attack close to success finishes in those few
noisy answers unless the noise hides the margin its steps move. For each scale this runs the
adaptive attacker (`detect.campaigns.adaptive_run`: 10 accounts, 10,000 queries) on each
victim once per noise seed (the guard's noise draws; the attack itself is seeded by its
victim), through the configuration the guard plan writes for the task, and prints how many
runs succeeded, next to the undefended attack. The default victims are the rows8 test points
the undefended attack breaks soonest (within 16 queries; docs/detect.md, "Actions").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bastion.detect.arena import Arena  # noqa: E402
from bastion.detect.campaigns import adaptive_run  # noqa: E402
from bastion.detect.configurations import DOMAIN_CONFIGURATION, detectors  # noqa: E402
from bastion.detect.profile import fit_profile  # noqa: E402
from bastion.detect.streams import TASKS, load_task  # noqa: E402
from bastion.guard.policies.minimise import OutputRule  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="rows8", choices=sorted(TASKS))
    ap.add_argument("--scales", default="0.05,0.15,0.3", help="Laplace scales, comma-separated")
    ap.add_argument("--seeds", type=int, default=8, help="noise seeds per victim and scale")
    ap.add_argument("--victims", default="23,46,50", help="test-point indices")
    args = ap.parse_args()
    task = load_task(args.task)
    victims = [int(v) for v in args.victims.split(",")]
    scales = [float(s) for s in args.scales.split(",")]
    conf = DOMAIN_CONFIGURATION[task.domain]
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="bastion-noise-") as tmp:
        profile = Path(tmp) / "profile.json"
        fit_profile(task.x_fit, shape=task.shape).save(profile)
        bare = Arena(task, [])
        undefended = {v: adaptive_run(bare, v, 10_000, 1, "bare-").success for v in victims}
        rows = []
        for scale in scales:
            wins = dict.fromkeys(victims, 0)
            for seed in range(args.seeds):
                arena = Arena(task, detectors(conf, profile), seed=seed)
                for policy in arena.guard.policies:
                    if hasattr(policy, "noise_rule"):
                        policy.noise_rule = OutputRule(mode="scores", noise=scale)
                for v in victims:
                    wins[v] += adaptive_run(arena, v, 10_000, 10).success
            rows.append((scale, wins))
            print(f"[{time.time() - t0:.0f}s] scale {scale} done", file=sys.stderr)
    print(f"{args.task} / {conf}: adaptive runs that succeed, of {args.seeds} noise seeds")
    print(f"{'victim':>8} {'undefended':>11} " + " ".join(f"{s:>8}" for s in scales))
    for v in victims:
        row = " ".join(f"{wins[v]:>8}" for _, wins in rows)
        print(f"{v:>8} {('yes' if undefended[v] else 'no'):>11} {row}")
    total = " ".join(f"{sum(w.values()):>8}" for _, w in rows)
    print(f"{'all':>8} {sum(undefended.values()):>11} {total}   (of {args.seeds * len(victims)})")


if __name__ == "__main__":
    main()
