"""`bastion attack`: run black-box attacks through an endpoint's real access.

The model is reached only over its API (a manifest's endpoint or `--url`);
there is deliberately no way to load a model file here, because loading a
pickled model runs its code. The attacker's data comes from `--data`, a file
of plain numbers.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

from bastion.cli.output import FailOn, Format, Output, emit
from bastion.cli.progress import progress_bar
from bastion.errors import UsageError

__all__ = ["register"]

_err = Console(stderr=True)
_DEFAULT = "hopskipjump-l2,square-linf,extraction-natural,membership-loss,membership-label-only"


def _numbers(text: str | None, what: str) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(
            f"{what}: cannot read {text!r}", hint="numbers separated by commas"
        ) from None


def _target(endpoint: Any) -> Any:
    """The HTTP target for a probes `Endpoint` (which already resolved URL and model name)."""
    from bastion.target import json_target, oip_target

    if endpoint.protocol == "oip":
        return oip_target(endpoint.url, endpoint.model_name, options=endpoint.options)
    return json_target(
        endpoint.url,
        mapping=endpoint.mapping,
        options=endpoint.options,
        input_shape=endpoint.input_shape,
    )


def _from_manifest(path: Path, endpoint_id: str | None, options: Any) -> dict[str, Any]:
    """Target, subject, input space and declared rate limit from an endpoint element."""
    from bastion.manifest import load_manifest
    from bastion.probes.endpoints import endpoints_from_manifest
    from bastion.threatmodel.engine import system_data

    manifest = load_manifest(path)
    endpoints = endpoints_from_manifest(manifest, options, endpoint_id)
    if not endpoints:
        raise UsageError(
            f"{path}: no endpoint element has a url to attack",
            hint="add `url:` to an endpoint element, or use --url",
        )
    if len(endpoints) > 1:
        ids = ", ".join(str(e.element_id) for e in endpoints)
        raise UsageError(f"{path}: several endpoints ({ids})", hint="choose one with --endpoint")
    ep = endpoints[0]
    element = manifest.element(str(ep.element_id))
    model_id = getattr(element, "model", None)
    model = manifest.element(model_id) if model_id else None
    spec = getattr(model, "input", None)
    public = getattr(model, "public_model", None)
    return {
        "public_model": None if public is None else (path.parent / public.path, public),
        "target": _target(ep),
        "subject": ep.subject(),
        "domain": getattr(spec, "domain", None),
        "shape": ep.input_shape,
        "bounds": ep.bounds,
        "rate_limit": ep.declared.rate_limit,
        "system": system_data(manifest),
        "name": str(path),
    }


def _transfers(names: list[str]) -> bool:
    """Does any requested attack craft on a public model? (Only then is the file read.)"""
    from bastion.registry import registry

    attacks = registry("attacks")
    return any(getattr(attacks.get(n), "uses_public_model", False) for n in names)


def _public_model(path: Path, spec: Any) -> Any:
    """Load the weights a manifest's `public_model` (or `--public-model`) names."""
    from bastion.attacks.public_model import load_public_model

    if spec is None:  # --public-model: the format is the file's suffix
        fmt = {".safetensors": "safetensors", ".npz": "npz"}.get(path.suffix.lower())
        if fmt is None:
            raise UsageError(
                f"--public-model {path}: cannot tell the format from the suffix",
                hint="a .safetensors file, or an .npz of plain arrays",
            )
        return load_public_model(path, fmt=fmt)
    return load_public_model(
        path,
        fmt=spec.format,
        sha256=spec.sha256,
        activation=spec.activation,
        classes=spec.classes,
    )


def attack(
    manifest: Annotated[
        Path | None, typer.Argument(help="System manifest; attacks its endpoint with a url.")
    ] = None,
    url: Annotated[str | None, typer.Option(help="Attack this endpoint instead.")] = None,
    protocol: Annotated[
        str, typer.Option(help="oip (Open Inference Protocol v2) or json.")
    ] = "oip",
    model: Annotated[str | None, typer.Option(help="OIP model name.")] = None,
    endpoint_id: Annotated[
        str | None, typer.Option("--endpoint", help="The manifest's endpoint element to attack.")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Attacker's data: .npz (x, y, members_x, ...) or .csv of numbers."),
    ] = None,
    attacks: Annotated[
        str, typer.Option("--attack", "-a", help="Attack names, comma-separated.")
    ] = _DEFAULT,
    budget: Annotated[
        int, typer.Option(help="Queries per attacked point (evasion) or per attack (others).")
    ] = 1000,
    points: Annotated[int, typer.Option(help="How many points to attack (evasion).")] = 50,
    max_queries: Annotated[
        int | None, typer.Option(help="Global cap on inputs sent, across all attacks.")
    ] = None,
    eps: Annotated[
        float | None, typer.Option(help="Success radius for evasion (in input units).")
    ] = None,
    domain: Annotated[str | None, typer.Option(help="image or tabular.")] = None,
    shape: Annotated[str | None, typer.Option(help="Shape of one input, e.g. 8,8.")] = None,
    bounds: Annotated[str | None, typer.Option(help="Valid input range LO,HI.")] = None,
    rate_limit: Annotated[
        str | None, typer.Option(help="Observed rate limit, e.g. 100/minute: sets severity.")
    ] = None,
    pace: Annotated[
        bool, typer.Option(help="Stay under --rate-limit while attacking (slow, polite).")
    ] = False,
    api_key: Annotated[
        str | None, typer.Option(envvar="BASTION_API_KEY", help="Credential for the endpoint.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = 10.0,
    public_model: Annotated[
        Path | None,
        typer.Option(
            help="Public weights (.safetensors or .npz) transfer-pgd crafts on, "
            "instead of a copy trained on the target's answers."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same run.")] = 0,
    batch_size: Annotated[
        int, typer.Option(help="Most inputs per request (servers often cap batches).")
    ] = 256,
    fmt: Format = "md",
    output: Output = None,
    fail_on: FailOn = "high",
) -> None:
    """Attack a deployed model through its API: evasion, extraction, membership inference."""
    from bastion import __version__
    from bastion.attacks.campaign import run_campaign
    from bastion.attacks.dataset import load_data
    from bastion.attacks.space import Domain
    from bastion.findings import Report, RunInfo
    from bastion.target import HttpOptions, Ledger, parse_rate

    if (manifest is None) == (url is None):
        raise UsageError("give a manifest or --url (exactly one)", hint="bastion attack --help")
    if protocol not in ("oip", "json"):
        raise UsageError(f"--protocol {protocol!r}", hint="oip or json")
    if data is None:
        raise UsageError("--data is required", hint="a .npz or .csv file of the attacker's inputs")
    options = HttpOptions(api_key=api_key, timeout_s=timeout)
    found: dict[str, Any] = {}
    if manifest is not None:
        found = _from_manifest(manifest, endpoint_id, options)
    else:
        assert url is not None
        from bastion.probes.endpoints import make_endpoint

        kind: Literal["oip", "json"] = "oip" if protocol == "oip" else "json"
        endpoint = make_endpoint(url, kind, model, options=options)
        found = {"target": _target(endpoint), "subject": endpoint.subject(), "name": url}
    lo_hi = _numbers(bounds, "--bounds") or found.get("bounds")
    if lo_hi is not None and len(lo_hi) != 2:
        raise UsageError(f"--bounds {bounds!r}", hint="two numbers: LO,HI")
    dims = _numbers(shape, "--shape") or found.get("shape")
    dom_text = domain or found.get("domain") or "image"
    if dom_text not in ("image", "tabular"):
        raise UsageError(f"domain {dom_text!r} cannot be attacked yet", hint="image or tabular")
    dataset = load_data(
        data,
        domain=Domain(dom_text),
        bounds=None if lo_hi is None else (float(lo_hi[0]), float(lo_hi[1])),
        shape=None if dims is None else tuple(int(v) for v in dims),
        points=points,
        seed=seed,
    )
    names = [n.strip() for n in attacks.split(",") if n.strip()]
    public = (public_model, None) if public_model is not None else found.get("public_model")
    if public is not None and _transfers(names):
        dataset = replace(dataset, public_model=_public_model(*public))
    limit = rate_limit or found.get("rate_limit")
    realistic = None if limit is None else max(1, int(parse_rate(limit) * 86_400))
    ledger = Ledger(found["target"], budget=max_queries, pace=limit if pace and limit else None)
    try:
        with progress_bar() as bar:
            task = bar.add_task("attacks", total=len(names))

            def tick(name: str, index: int, total: int) -> None:
                bar.update(task, completed=index, total=total, description=name)

            run = run_campaign(
                ledger,
                dataset,
                names,
                budget=budget,
                seed=seed,
                eps=eps,
                realistic_budget=realistic,
                subject=found["subject"],
                progress=tick,
                batch_size=batch_size,
            )
    finally:
        ledger.close()
    notes = list(run.notes)
    if realistic is not None:
        notes.append(f"severity read at {realistic} queries per point (a day at {limit})")
    report = Report(
        findings=tuple(run.findings),
        series=tuple(run.series),
        run=RunInfo(
            version=__version__,
            command="attack",
            subject=found["name"],
            analysers=("attack",),
            notes=tuple(notes),
        ),
        system=found.get("system"),
    ).sorted()
    raise typer.Exit(emit(report, fmt, output, fail_on))


def register(app: typer.Typer) -> None:
    app.command("attack")(attack)
