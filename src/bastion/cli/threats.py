"""`bastion threats`, `catalogue`, `manifest`: describe a system, derive its threats."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Filled in by the foundation work (manifest, catalogue, rule engine)."""
