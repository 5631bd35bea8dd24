"""`bastion campaign`: assess many systems in one run, on local processes or a Ray cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bastion.cli.output import FailOn, Format, Output, emit
from bastion.cli.progress import progress_bar

__all__ = ["register"]

_err = Console(stderr=True)


def campaign(
    manifests: Annotated[list[Path], typer.Argument(help="System manifests, one per system.")],
    executor: Annotated[
        str, typer.Option(help="local (a process pool) or ray (extra `ray`).")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join (ray://HOST:10001 or auto); default: a local Ray."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Parallel systems (default: one per CPU).")
    ] = None,
    probe: Annotated[
        bool, typer.Option(help="Probe (and audit) live endpoints; --no-probe: threats only.")
    ] = True,
    retries: Annotated[int, typer.Option(help="Attempts after a system's task fails.")] = 1,
    fmt: Format = "md",
    output: Output = None,
    fail_on: FailOn = "high",
) -> None:
    """Assess many systems in one run and write one summary report."""
    from bastion.campaign.executor import TaskEvent, make_executor
    from bastion.campaign.systems import run_campaign

    pool = make_executor(executor, workers=workers, address=address)
    try:
        with progress_bar() as bar:
            task = bar.add_task("systems", total=len(manifests))

            def tick(event: TaskEvent) -> None:
                bar.update(task, completed=event.done, total=event.total, description=event.key)
                if event.kind == "retry":
                    _err.print(f"retrying {event.key}: {event.detail}", markup=False)

            report = run_campaign(manifests, pool, probe=probe, progress=tick, retries=retries)
    finally:
        pool.close()
    raise typer.Exit(emit(report, fmt, output, fail_on))


def register(app: typer.Typer) -> None:
    app.command("campaign")(campaign)
