"""Shared output handling: every command that yields a Report formats, writes and exits alike."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bastion.errors import UsageError
from bastion.findings import Report, Severity
from bastion.registry import registry

__all__ = ["FailOn", "Format", "Output", "emit", "parse_fail_on"]

Format = Annotated[
    str, typer.Option("--format", "-f", help="Report format: json, md, html or sarif.")
]
Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write the report here instead of stdout.")
]
FailOn = Annotated[
    str,
    typer.Option(
        "--fail-on",
        help="Exit 1 when a finding is at or above this severity (critical, high, medium, "
        "low, info) or 'never'.",
    ),
]

_err = Console(stderr=True)


def parse_fail_on(text: str) -> Severity | None:
    if text.strip().lower() == "never":
        return None
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise UsageError(f"--fail-on: {exc}", hint="or 'never'") from None


def emit(report: Report, fmt: str, output: Path | None, fail_on: str) -> int:
    """Render, write, summarise on stderr, and return the exit code."""
    threshold = parse_fail_on(fail_on)
    render = registry("reporters").get(fmt)
    text: str = render(report)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    counts = report.counts()
    summary = ", ".join(f"{n} {sev}" for sev, n in counts.items() if n)
    where = f" → {output}" if output else ""
    _err.print(f"{len(report.findings)} findings ({summary or 'none'}){where}", highlight=False)
    if threshold is not None and report.at_least(threshold):
        return 1
    return 0
