"""`bastion audit` (the main job) and `bastion compare` (verify a mitigation per finding)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from bastion.cli.output import FailOn, Format, Output, emit
from bastion.cli.progress import StageProgress, interruptible
from bastion.errors import ConfigError, UsageError
from bastion.findings import Report

__all__ = ["read_report", "register"]


def read_report(path: Path) -> Report:
    """A JSON report written by `-f json`; anything else is a usage error, said plainly."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "report not found", path=str(path), hint="write one with -f json"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read report: {exc}", path=str(path)) from None
    try:
        return Report.from_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise ConfigError(
            f"not a bastion JSON report ({where}: {first['msg']})",
            path=str(path),
            hint="pass reports written by bastion with -f json",
        ) from None


def compare_reports(
    before: Annotated[Path, typer.Argument(help="JSON report of the unmitigated system.")],
    after: Annotated[Path, typer.Argument(help="JSON report of the mitigated system.")],
    fmt: Format = "md",
    output: Output = None,
    fail_on: FailOn = "never",
) -> None:
    """Before/after: which findings a mitigation resolved, reduced, left or introduced."""
    from bastion.compare import compare

    report = compare(read_report(before), read_report(after))
    raise typer.Exit(emit(report, fmt, output, fail_on))


def audit_command(
    manifest: Annotated[Path | None, typer.Argument(help="The system manifest (YAML).")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Attacker's data (.npz/.csv of numbers) for attacks.")
    ] = None,
    against: Annotated[
        str | None, typer.Option(help="Audit the endpoint at this URL instead (e.g. a guard).")
    ] = None,
    compare_with: Annotated[
        tuple[Path, Path] | None,
        typer.Option("--compare", help="Compare two JSON reports (BEFORE AFTER) instead."),
    ] = None,
    before: Annotated[
        Path | None, typer.Option(help="With --against: the unguarded run's JSON report.")
    ] = None,
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint element.")] = None,
    attacks: Annotated[
        str | None, typer.Option("--attack", "-a", help="Attack names, comma-separated.")
    ] = None,
    budget: Annotated[int, typer.Option(help="Global query budget for attacks.")] = 20_000,
    point_budget: Annotated[int, typer.Option(help="Queries per attacked point.")] = 400,
    points: Annotated[int, typer.Option(help="Points attacked per evasion attack.")] = 20,
    time_limit: Annotated[float, typer.Option(help="Seconds for the whole audit.")] = 600.0,
    stages: Annotated[
        str, typer.Option(help="Stages to run, comma-separated.")
    ] = "threats,scan,probes,attacks",
    run_dir: Annotated[
        Path | None, typer.Option(help="Keep finished stages here (for --resume).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --run-dir.")] = False,
    api_key: Annotated[
        str | None, typer.Option(envvar="BASTION_API_KEY", help="Credential for the endpoints.")
    ] = None,
    attack_key: Annotated[
        list[str] | None,
        typer.Option(
            help="Credential for the attacks (repeat it: each attack runs as the next "
            "principal, like an attacker with several accounts). Default: --api-key."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same run.")] = 0,
    executor: Annotated[
        str | None,
        typer.Option(help="Spread attack runs over 'local' processes or a 'ray' cluster."),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address, e.g. ray://head:10001.")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Workers for --executor.")] = None,
    fmt: Format = "md",
    output: Output = None,
    fail_on: FailOn = "high",
) -> None:
    """Assess a whole ML system: threat rules, artifact scan, exposure probes, attacks."""
    from bastion.audit import DEFAULT_ATTACKS, AuditOptions, audit
    from bastion.compare import compare

    if compare_with is not None:
        report = compare(read_report(compare_with[0]), read_report(compare_with[1]))
        raise typer.Exit(emit(report, fmt, output, fail_on))
    if manifest is None:
        raise UsageError("give a manifest (or --compare BEFORE AFTER)", hint="bastion audit --help")
    names = tuple(a.strip() for a in attacks.split(",") if a.strip()) if attacks else None
    options = AuditOptions(
        data=data,
        attacks=names or DEFAULT_ATTACKS,
        budget=budget,
        point_budget=point_budget,
        points=points,
        time_limit_s=time_limit,
        api_key=api_key,
        attack_keys=tuple(attack_key or ()),
        against=against,
        endpoint=endpoint,
        seed=seed,
        stages=tuple(s.strip() for s in stages.split(",") if s.strip()),
        executor=executor,
        address=address,
        workers=workers,
    )
    kept = (
        f"finished stages are kept in {run_dir}; continue with --resume"
        if run_dir
        else ("nothing was kept (pass --run-dir to make audits resumable)")
    )
    with interruptible(kept), StageProgress() as hooks:
        report = audit(manifest, options, run_dir, resume, hooks.stage, hooks.step)
    if before is not None:
        report = compare(read_report(before), report)
    raise typer.Exit(emit(report, fmt, output, fail_on))


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Where the demo writes its files.")] = Path(
        "out/demo"
    ),
    quick: Annotated[bool, typer.Option(help="Smaller attack budgets (for tests).")] = False,
) -> None:
    """The whole loop on a careless deployment built on the spot; writes a before/after report."""
    from threadpoolctl import threadpool_limits

    from bastion.demo.runner import run_demo

    console = Console(stderr=True)
    with interruptible("every process the demo started was stopped"), threadpool_limits(1):
        result = run_demo(out, quick=quick, say=lambda text: console.print(text, highlight=False))
    total = sum(result.timings.values())
    counts = result.after.comparison.counts() if result.after.comparison else {}
    console.print(
        f"done in {total:.0f}s — {counts.get('resolved', 0)} findings resolved, "
        f"{counts.get('reduced', 0)} reduced, {counts.get('unchanged', 0)} unchanged, "
        f"{counts.get('new', 0)} new",
        highlight=False,
    )
    typer.echo(str(result.report))


def register(app: typer.Typer) -> None:
    app.command("audit")(audit_command)
    app.command("demo")(demo_command)
    app.command("compare")(compare_reports)
