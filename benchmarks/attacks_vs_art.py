"""bastion's black-box attacks next to the Adversarial Robustness Toolbox (ART), same models.

Benchmark-only peer, not a bastion dependency:

    pip install adversarial-robustness-toolbox  # into the dev venv
    PYTHONPATH=src python benchmarks/attacks_vs_art.py [--points 100] [--quick]
        [--models digits-mlp,digits-svc,cancer-gbm] [--attacks square-linf,...]
        [--only evasion|extraction]

Models: an MLP and an RBF-SVC on scikit-learn's digits (pixels scaled to
[0, 1]), a gradient-boosting model on scikit-learn's breast-cancer data
(min-max scaled to [0, 1]). Each tool attacks the same correctly classified
test points with the same per-point query budget, through the same
`predict_proba` (label-only attacks see only the one-hot label). ART is run
one point at a time so its queries per point can be counted; its HopSkipJump
and SimBA work point by point anyway, and Square is also timed batched.

Success for the minimal-perturbation attack (HopSkipJump) means an adversarial
within the stated L2 radius; bastion stops a point at its first success (its
median queries are queries-to-success), so a second bastion row keeps going
after success, as ART does, to compare the perturbation reached: up to the full
budget, or until an iteration shrinks a point's perturbation by less than 5 %
(the mean queries a point spent are shown in brackets). For Square,
success is an adversarial within the L∞ radius; for SimBA, any adversarial.
Extraction: fidelity (agreement with the victim on held-out test inputs) of
an MLP surrogate after 50/100/200/450 queries, bastion's natural and active
strategies against ART's CopycatCNN with the same surrogate.
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from bastion.attacks import AttackData, Domain, InputSpace, Norm, Oracle
from bastion.registry import registry
from bastion.target import OutputKind, SklearnTarget

warnings.filterwarnings("ignore")


@dataclass
class Case:
    name: str
    model: Any
    x_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    shape: tuple[int, ...]  # per-sample shape for image attacks (ART: channels first)
    domain: Domain
    l2: float  # success radius for HopSkipJump
    linf: float  # radius for Square


def _cases(seed: int) -> list[Case]:
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, random_state=seed).fit(xtr, ytr)
    svc = SVC(kernel="rbf", probability=True, random_state=seed).fit(xtr, ytr)
    xb, yb = load_breast_cancer(return_X_y=True)
    xb = (xb - xb.min(axis=0)) / (xb.max(axis=0) - xb.min(axis=0))
    btr, bte, bytr, byte = train_test_split(xb, yb, test_size=0.4, random_state=seed, stratify=yb)
    gbm = GradientBoostingClassifier(random_state=seed).fit(btr, bytr)
    return [
        Case("digits-mlp", mlp, xtr, xte, yte, (1, 8, 8), Domain.IMAGE, 1.5, 0.15),
        Case("digits-svc", svc, xtr, xte, yte, (1, 8, 8), Domain.IMAGE, 1.5, 0.15),
        # ART's Square needs a 2-D grid: it sees the 30 features as 5 x 6 (ours: subsets)
        Case("cancer-gbm", gbm, btr, bte, byte, (1, 5, 6), Domain.TABULAR, 0.5, 0.1),
    ]


class Counter:
    """The victim as ART sees it: counts every input row."""

    def __init__(self, model: Any, labels_only: bool) -> None:
        self.model = model
        self.labels_only = labels_only
        self.n = 0
        self.k = len(model.classes_)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = x.reshape(x.shape[0], -1)
        self.n += x.shape[0]
        p = self.model.predict_proba(x)
        if self.labels_only:
            return np.eye(self.k)[p.argmax(axis=1)]
        return np.asarray(p, dtype=np.float32)


def _art_classifier(case: Case, labels_only: bool) -> tuple[Any, Counter]:
    from art.estimators.classification import BlackBoxClassifierNeuralNetwork

    counter = Counter(case.model, labels_only)
    clf = BlackBoxClassifierNeuralNetwork(
        counter, case.shape, counter.k, channels_first=True, clip_values=(0.0, 1.0)
    )
    return clf, counter


@dataclass
class Row:
    success: float
    queries: float
    l2: float
    linf: float
    wall: float
    spent: float = float("nan")  # mean queries a point used in all


def _measure(
    x0: np.ndarray, adv: np.ndarray, model: Any, y0: np.ndarray, radius: float | None, norm: Norm
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fooled = model.predict(adv.reshape(len(adv), -1)) != y0
    d = adv.reshape(len(adv), -1) - x0
    l2, linf = Norm.L2.of(d), Norm.LINF.of(d)
    within = (
        fooled
        if radius is None
        else fooled & ((l2 if norm is Norm.L2 else linf) <= radius * (1 + 1e-6))
    )
    return within, l2, linf


def art_attack(
    case: Case, kind: str, x0: np.ndarray, y0: np.ndarray, budget: int, per_point: bool = True
) -> Row:
    from art.attacks.evasion import HopSkipJump, SimBA, SquareAttack

    labels_only = kind == "hopskipjump-l2"
    clf, counter = _art_classifier(case, labels_only)

    def make() -> Any:
        if kind == "hopskipjump-l2":
            # init_eval 100, growing by sqrt(iteration): five iterations ≈ 1000 queries
            return HopSkipJump(
                clf, norm=2, max_iter=5, max_eval=1000, init_eval=100, init_size=100, verbose=False
            )
        if kind == "square-linf":
            # ART's default p_init 0.8 makes its window as tall as a 5 x 6 grid and crashes
            # (randint(0, 0)); 0.3 is bastion's own setting
            p_init = 0.8 if case.domain is Domain.IMAGE else 0.3
            return SquareAttack(
                clf,
                norm=np.inf,
                eps=case.linf,
                max_iter=budget,
                p_init=p_init,
                nb_restarts=1,
                verbose=False,
            )
        attack = "px" if kind == "simba-pixel" else "dct"
        return SimBA(
            clf,
            attack=attack,
            max_iter=budget // 2,
            epsilon=0.2,
            freq_dim=4,
            order="random",
            verbose=False,
        )

    xs = x0.reshape((len(x0), *case.shape)).astype(np.float32)
    attack = make()
    queries = np.zeros(len(x0))
    advs = np.zeros_like(xs)
    start = time.perf_counter()
    if per_point:
        for i in range(len(x0)):
            before = counter.n
            advs[i] = attack.generate(xs[i : i + 1])[0]
            queries[i] = counter.n - before
    else:
        advs = attack.generate(xs)
        queries[:] = counter.n / len(x0)
    wall = time.perf_counter() - start
    radius = case.l2 if kind == "hopskipjump-l2" else case.linf if kind == "square-linf" else None
    norm = Norm.L2 if kind == "hopskipjump-l2" else Norm.LINF
    ok, l2, linf = _measure(x0, advs.astype(np.float64), case.model, y0, radius, norm)
    return Row(
        float(ok.mean()),
        float(np.median(queries)),
        float(np.median(l2[ok])) if ok.any() else float("nan"),
        float(np.median(linf[ok])) if ok.any() else float("nan"),
        wall,
    )


def bastion_attack(
    case: Case, kind: str, x0: np.ndarray, budget: int, seed: int, full: bool = False
) -> Row:
    output = OutputKind.LABEL if kind == "hopskipjump-l2" else OutputKind.SCORES
    target = SklearnTarget(case.model, output=output)
    shape = case.shape[1:] if case.domain is Domain.IMAGE else (x0.shape[1],)
    space = InputSpace.build(x0.shape[1], (0.0, 1.0), shape=shape, domain=case.domain)
    radius = case.l2 if kind == "hopskipjump-l2" else case.linf if kind == "square-linf" else None
    attack = registry("attacks").get(kind)(eps=radius)
    if full:  # keep shrinking the perturbation after success, like ART does
        attack = registry("attacks").get(kind)(eps=radius, stop_on_success=False)
    start = time.perf_counter()
    result = attack.run(Oracle(target), AttackData(space=space, x=x0), budget=budget, seed=seed)
    wall = time.perf_counter() - start
    ok = result.success
    assert ok is not None and result.queries is not None and result.spent is not None
    assert result.l2 is not None and result.linf is not None
    # queries per point: until success for a fooled point, everything spent otherwise
    return Row(
        float(ok.mean()),
        float(np.median(result.queries)),
        float(np.median(result.l2[ok])) if ok.any() else float("nan"),
        float(np.median(result.linf[ok])) if ok.any() else float("nan"),
        wall,
        float(np.mean(result.spent)),
    )


def _fidelity(model: Any, surrogate: Any, x: np.ndarray) -> float:
    return float(np.mean(surrogate.predict(x) == model.predict(x)))


def art_extraction(case: Case, budgets: list[int], seed: int) -> list[float]:
    from art.attacks.extraction import CopycatCNN
    from art.estimators.classification import BlackBoxClassifier
    from art.estimators.classification.scikitlearn import ScikitlearnClassifier

    class Thief(ScikitlearnClassifier):  # type: ignore[misc]
        """ART's sklearn wrapper whose fit() ignores the neural-network-only keywords."""

        def fit(self, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> None:
            super().fit(x, y)

    counter = Counter(case.model, labels_only=True)
    victim = BlackBoxClassifier(
        counter, (case.x_train.shape[1],), counter.k, clip_values=(0.0, 1.0)
    )
    out = []
    for b in budgets:
        np.random.seed(seed)
        thief = Thief(
            MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=seed),
            clip_values=(0.0, 1.0),
        )
        copy = CopycatCNN(victim, batch_size_fit=64, batch_size_query=64, nb_epochs=1, nb_stolen=b)
        stolen = copy.extract(case.x_train, thieved_classifier=thief)
        pred = np.argmax(stolen.predict(case.x_test), axis=1)
        out.append(float(np.mean(case.model.classes_[pred] == case.model.predict(case.x_test))))
    return out


def bastion_extraction(
    case: Case, strategy: str, budgets: list[int], seed: int
) -> tuple[list[float], float]:
    target = SklearnTarget(case.model, output=OutputKind.LABEL)
    space = InputSpace.build(case.x_train.shape[1], (0.0, 1.0), domain=case.domain)
    data = AttackData(space=space, x=case.x_train, pool=case.x_train, x_eval=case.x_test)
    attack = registry("attacks").get(f"extraction-{strategy}")(checkpoints=tuple(budgets))
    start = time.perf_counter()
    result = attack.run(Oracle(target), data, budget=max(budgets), seed=seed)
    return list(result.series[0].y), time.perf_counter() - start


def _cells(r: Row) -> list[str]:
    return [f"{r.success:.2f}", f"{r.queries:.0f}", f"{r.l2:.3f}", f"{r.linf:.3f}", f"{r.wall:.2f}"]


def _print_row(cells: list[str]) -> None:
    print("| " + " | ".join(cells) + " |", flush=True)


def _ratio(a: float, b: float) -> str:
    return "n/a" if not b or np.isnan(a) or np.isnan(b) else f"{a / b:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="20 points, digits-mlp only")
    parser.add_argument("--models", help="comma-separated subset, e.g. cancer-gbm")
    parser.add_argument("--only", choices=["evasion", "extraction"], help="run one part")
    parser.add_argument("--attacks", help="comma-separated subset, e.g. square-linf")
    parser.add_argument("--extraction-seeds", type=int, default=3, help="runs averaged")
    args = parser.parse_args()
    points = 20 if args.quick else args.points
    with threadpool_limits(1):
        cases = _cases(args.seed)[: 1 if args.quick else None]
        if args.models:
            cases = [c for c in cases if c.name in args.models.split(",")]
        print(f"# bastion vs ART — {points} points per model, {args.budget} queries per point\n")
        head = ["model", "attack", "tool", "success", "median queries", "median L2"]
        head += ["median L∞", "wall s", "success ratio", "queries ratio", "time ratio"]
        _print_row(head)
        _print_row(["---"] * len(head))
        for case in cases if args.only != "extraction" else []:
            pred = case.model.predict(case.x_test)
            idx = np.flatnonzero(pred == case.y_test)[:points]
            x0, y0 = case.x_test[idx], case.y_test[idx]
            kinds = ["hopskipjump-l2", "square-linf", "simba-pixel"]
            if case.domain is Domain.IMAGE:
                kinds.append("simba-dct")
            if args.attacks:
                kinds = [k for k in kinds if k in args.attacks.split(",")]
            for kind in kinds:
                ours = bastion_attack(case, kind, x0, args.budget, args.seed)
                theirs = art_attack(case, kind, x0, y0, args.budget)
                ratios = [
                    _ratio(ours.success, theirs.success),
                    _ratio(ours.queries, theirs.queries),
                    _ratio(ours.wall, theirs.wall),
                ]
                _print_row([case.name, kind, "bastion", *_cells(ours), *ratios])
                _print_row([case.name, kind, "ART", *_cells(theirs), "", "", ""])
                if kind == "hopskipjump-l2":
                    full = bastion_attack(case, kind, x0, args.budget, args.seed, full=True)
                    cells = [*_cells(full), "", "", _ratio(full.wall, theirs.wall)]
                    cells[1] += f" ({full.spent:.0f} spent)"
                    _print_row([case.name, kind, "bastion until converged", *cells])
                if kind == "square-linf":
                    batched = art_attack(case, kind, x0, y0, args.budget, per_point=False)
                    cells = _cells(batched)
                    cells[1] += " (mean)"
                    # last cell: bastion's wall time over batched ART's
                    ratio = _ratio(ours.wall, batched.wall)
                    _print_row([case.name, kind, "ART batched", *cells, "", "", ratio])
        budgets = [50, 100, 200, 450]
        seeds = [args.seed + k for k in range(args.extraction_seeds)]
        print(
            "\n## Extraction: fidelity of an MLP surrogate on held-out test inputs (label-only),"
            f" mean of {len(seeds)} seeds\n"
        )
        print("| model | tool | " + " | ".join(f"{b} q" for b in budgets) + " | wall s |")
        print("|---|---|" + "---|" * len(budgets) + "---|")
        for case in cases if args.only != "evasion" else []:
            t0 = time.perf_counter()
            art = np.mean([art_extraction(case, budgets, s) for s in seeds], axis=0)
            art_wall = time.perf_counter() - t0
            cells = [f"{v:.3f}" for v in art]
            _print_row([case.name, "ART CopycatCNN", *cells, f"{art_wall:.1f}"])
            for strategy in ("natural", "active"):
                runs = [bastion_extraction(case, strategy, budgets, s) for s in seeds]
                fid = np.mean([r[0] for r in runs], axis=0)
                wall = sum(r[1] for r in runs)
                cells = [f"{v:.3f} ({v - a:+.3f})" for v, a in zip(fid, art, strict=True)]
                _print_row([case.name, f"bastion {strategy}", *cells, f"{wall:.1f}"])


if __name__ == "__main__":
    main()
