"""`bastion detect ...`: fit a benign profile for the detectors, and evaluate them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bastion.errors import UsageError

__all__ = ["register"]

detect_app = typer.Typer(
    name="detect",
    help="Attack-in-progress detectors: fit them on benign data and evaluate them.",
    no_args_is_help=True,
)


def _load_rows(path: Path) -> object:
    import numpy as np

    if not path.is_file():
        raise UsageError(f"{path}: no such file", hint="pass benign inputs as .npy or .csv")
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)  # never unpickle user files
        if path.suffix == ".csv":
            return np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as exc:
        raise UsageError(f"{path}: cannot read as numbers: {exc}") from None
    raise UsageError(f"{path}: unsupported format {path.suffix!r}", hint="use .npy or .csv")


@detect_app.command("fit")
def fit(
    data: Annotated[
        Path, typer.Option("--data", help="Benign inputs (.npy or .csv), one row each.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Profile JSON to write.")] = Path(
        "detect-profile.json"
    ),
    shape: Annotated[
        str | None, typer.Option(help="One input's shape, e.g. 32,32,3 (default: the array's).")
    ] = None,
    dim: Annotated[int, typer.Option(min=2, max=256, help="Feature dimensions kept.")] = 32,
) -> None:
    """Fit the detectors' benign profile (feature map, near-radius, coverage cells)."""
    import numpy as np

    from bastion.detect.profile import fit_profile

    rows = np.asarray(_load_rows(data), dtype=np.float32)
    row_shape = None
    if shape:
        try:
            row_shape = tuple(int(s) for s in shape.split(","))
        except ValueError:
            raise UsageError(
                f"--shape {shape!r} is not a comma-separated list of integers"
            ) from None
        rows = rows.reshape(len(rows), -1)
    profile = fit_profile(rows, shape=row_shape, dim=dim)
    profile.save(output)
    typer.echo(
        f"profile: {profile.n_fit} rows, {profile.dim} dims, "
        f"radius {profile.radius:.4g} -> {output}",
        err=True,
    )


@detect_app.command("eval")
def eval_(
    task: Annotated[list[str] | None, typer.Option(help="digits32, cancer and/or rows8.")] = None,
    configuration: Annotated[
        list[str] | None, typer.Option("--configuration", help="Detector configuration(s).")
    ] = None,
    runs: Annotated[int, typer.Option(min=1, help="Runs (attacked points) per attack.")] = 5,
    budget: Annotated[int, typer.Option(min=10, help="Queries per non-adaptive run.")] = 1000,
    benign: Annotated[int, typer.Option(min=1, help="Benign principals.")] = 200,
    benign_after: Annotated[
        int, typer.Option(min=0, help="Further benign principals, after the attacks.")
    ] = 100,
    adaptive_runs: Annotated[int, typer.Option(min=0)] = 3,
    adaptive_budget: Annotated[int, typer.Option(min=10)] = 10_000,
    extraction_budget: Annotated[int, typer.Option(min=10, help="Queries per extraction.")] = 1000,
    art: Annotated[bool, typer.Option(help="Also run ART's attacks (if installed).")] = True,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML report.")] = Path(
        "detect-eval.html"
    ),
    json_out: Annotated[Path | None, typer.Option("--json", help="Raw results as JSON.")] = None,
) -> None:
    """Measure detectors against bastion's, ART's and an adaptive attacker's attacks and
    against realistic benign users; write an HTML report with plots."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from bastion.detect.evaluation import CONFIGURATIONS, EvalPlan, evaluate
    from bastion.detect.report import HEAD, render_html, summary_rows

    confs = tuple(configuration or ("similarity+extraction", "rows+extraction", "fingerprint"))
    unknown = [c for c in confs if c not in CONFIGURATIONS]
    if unknown:
        raise UsageError(
            f"unknown configuration {unknown[0]!r}", hint=f"one of: {', '.join(CONFIGURATIONS)}"
        )
    if art:
        try:
            import art as _art  # noqa: F401
        except ImportError:
            raise UsageError(
                "ART is not installed",
                hint="pip install adversarial-robustness-toolbox, or pass --no-art",
            ) from None
    plan = EvalPlan(
        tasks=tuple(task or ("digits32", "cancer")),
        configurations=confs,
        art=art,
        runs=runs,
        budget=budget,
        benign=benign,
        adaptive_runs=adaptive_runs,
        adaptive_budget=adaptive_budget,
        extraction_budget=extraction_budget,
        benign_after=benign_after,
    )
    err = Console(stderr=True)
    with err.status("evaluating") as status:
        results = evaluate(plan, progress=lambda m: status.update(m))
    table = Table(*HEAD)
    for row in summary_rows(results):
        table.add_row(*row)
    Console().print(table)
    for r in results:
        typer.echo(
            f"{r.task}/{r.configuration}: benign FPR {r.benign_flagged}/{r.benign_principals} "
            f"({r.fpr:.2%}), after the attacks {r.benign_after_flagged}/"
            f"{r.benign_after_principals}, cost {r.cost_ms:.3f} ms/query, "
            f"memory per principal at most {r.memory_bytes_per_principal / 1024:.0f} KiB, "
            f"{r.memory_bytes_held / 1024:.1f} KiB held on average by the benign ones"
        )
    output.write_text(render_html(results, asdict(plan)))
    typer.echo(f"report: {output}", err=True)
    if json_out:
        json_out.write_text(json.dumps([r.to_dict() for r in results], indent=1, default=str))


def register(app: typer.Typer) -> None:
    app.add_typer(detect_app)
