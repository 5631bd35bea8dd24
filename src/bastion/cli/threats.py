"""`bastion threats`, `catalogue`, `manifest`: describe a system, derive its threats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.output import FailOn, Format, Output, emit
from bastion.errors import UsageError

__all__ = ["register"]

_out = Console()
_err = Console(stderr=True)

Manifest = Annotated[Path, typer.Argument(help="The system manifest (YAML).")]
Catalogues = Annotated[
    list[Path] | None,
    typer.Option("--catalogue", "-c", help="An extra threat catalogue file (repeatable)."),
]

catalogue_app = typer.Typer(help="Browse the threat catalogue.", no_args_is_help=True)
manifest_app = typer.Typer(
    help="Validate manifests and publish their JSON Schema.", no_args_is_help=True
)


def threats(
    manifest: Manifest,
    fmt: Format = "md",
    output: Output = None,
    fail_on: FailOn = "high",
    catalogue: Catalogues = None,
) -> None:
    """Derive the threats of an ML system from its manifest."""
    from bastion.manifest import load_manifest
    from bastion.threatmodel import threat_model

    report = threat_model(load_manifest(manifest), catalogue or ())
    raise typer.Exit(emit(report, fmt, output, fail_on))


@catalogue_app.command("list")
def catalogue_list(catalogue: Catalogues = None) -> None:
    """List every threat: id, severity, category, title."""
    from bastion.catalogue import load_catalogue

    cat = load_catalogue(tuple(catalogue or ()))
    table = Table("id", "severity", "category", "applies to", "title", box=None)
    for t in cat.threats:
        table.add_row(t.id, t.severity.value, t.category, ", ".join(t.applies_to), t.title)
    _out.print(table)
    _err.print(f"{len(cat.threats)} threats, {len(cat.mitigations)} mitigations")


@catalogue_app.command("show")
def catalogue_show(
    item: Annotated[str, typer.Argument(help="A threat (T001) or mitigation (M01) id.")],
    catalogue: Catalogues = None,
) -> None:
    """Show one threat or mitigation in full, including its condition."""
    from bastion.catalogue import atlas_table, load_catalogue

    cat = load_catalogue(tuple(catalogue or ()))
    atlas = atlas_table()
    try:
        threat = cat.threat(item.upper())
        data = threat.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        data.setdefault("tags", {})
        names = [f"{t} {atlas['techniques'][t]['name']}" for t in data["tags"].get("atlas", [])]
    except KeyError:
        try:
            data = cat.mitigation(item.upper()).model_dump(mode="json", exclude_none=True)
            names = [f"{m} {atlas['mitigations'][m]['name']}" for m in data.get("atlas", [])]
        except KeyError:
            raise UsageError(
                f"no threat or mitigation {item!r}", hint="see `bastion catalogue list`"
            ) from None
    data["atlas_names"] = names
    typer.echo(json.dumps(data, indent=2))


@manifest_app.command("validate")
def manifest_validate(manifests: Annotated[list[Path], typer.Argument(help="Manifests.")]) -> None:
    """Check manifests; print one line per file, exit 2 on the first invalid one."""
    from bastion.manifest import load_manifest

    for path in manifests:
        m = load_manifest(path)
        _err.print(
            f"{path}: ok — {len(m.elements)} elements, {len(m.flows)} flows, "
            f"{len(m.boundaries)} boundaries",
            highlight=False,
        )


@manifest_app.command("schema")
def manifest_schema(output: Output = None) -> None:
    """Print the manifest JSON Schema (for editor validation)."""
    from bastion.manifest import json_schema

    text = json.dumps(json_schema(), indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        typer.echo(text)


def register(app: typer.Typer) -> None:
    app.command("threats")(threats)
    app.add_typer(catalogue_app, name="catalogue")
    app.add_typer(manifest_app, name="manifest")
