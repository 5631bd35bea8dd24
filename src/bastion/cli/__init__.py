"""The `bastion` command: a thin Typer layer that parses, calls the library, prints, exits.

Each capability contributes its commands from its own module through a
`register(app)` function, listed once below. Exit codes: 0 clean, 1 findings
at/above `--fail-on`, 2 usage/config error, 3 operational error.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

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
_COMMAND_MODULES = ("bastion.cli.threats",)


def _register_all() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Entry point: turn every BastionError into a one-line message and its exit code."""
    try:
        app(args=argv, standalone_mode=False)
    except BastionError as exc:
        _err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        _err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive as ClickException subclasses
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2)
        raise
    sys.exit(0)
