"""The `bastion` command: a thin Typer layer that parses, calls the library, prints, exits.

Each capability contributes its commands from its own module through a
`register(app)` function, listed once below. Exit codes: 0 clean, 1 findings
at/above `--fail-on`, 2 usage/config error, 3 operational error.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from bastion.errors import BastionError

__all__ = ["app", "main"]

app = typer.Typer(
    name="bastion",
    help="Assess and defend deployed ML systems: describe → assess → mitigate → verify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_err = Console(stderr=True)


# One line per capability module that contributes commands.
_COMMAND_MODULES = (
    "bastion.cli.threats",
    "bastion.cli.audit",
    "bastion.cli.probe",
    "bastion.cli.guard",
    "bastion.cli.attack",
    "bastion.cli.scan",
    "bastion.cli.campaign",
    "bastion.cli.detect",
)


def _register_all() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Entry point: turn every BastionError into a one-line message and its exit code.

    Typer/click handle their own usage errors (exit 2) in standalone mode; our
    errors propagate out of it and are printed here without a traceback.
    """
    try:
        app(args=argv, prog_name="bastion")
    except BastionError as exc:
        _err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err.print("interrupted")
        sys.exit(130)


@app.callback()
def _root() -> None:
    """Assess and defend deployed ML systems: describe → assess → mitigate → verify."""


@app.command("version")
def version() -> None:
    """Print bastion's version."""
    from bastion import __version__

    typer.echo(__version__)
