"""`bastion compare`: verify a mitigation by comparing two reports finding by finding."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from bastion.cli.output import FailOn, Format, Output, emit
from bastion.errors import ConfigError
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


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_reports)
