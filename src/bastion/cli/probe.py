"""`bastion probe`: measure what a live endpoint exposes, from a manifest or a URL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape

from bastion.cli.output import FailOn, Format, Output, emit
from bastion.cli.progress import progress_bar
from bastion.errors import UsageError

__all__ = ["register"]

_err = Console(stderr=True)


def _floats(text: str | None, what: str) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        return tuple(float(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise UsageError(
            f"{what}: cannot read {text!r}", hint="numbers separated by commas"
        ) from None


def _headers(values: list[str] | None) -> tuple[tuple[str, str], ...]:
    out = []
    for value in values or ():
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header {value!r}", hint="write it as 'Name: value'")
        out.append((name.strip(), content.strip()))
    return tuple(out)


def probe(
    manifest: Annotated[
        Path | None, typer.Argument(help="System manifest; probes every endpoint with a url.")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="Probe this URL; with a manifest, probe its endpoint here instead "
            "(e.g. behind a guard), keeping the element's id and declarations."
        ),
    ] = None,
    protocol: Annotated[
        str, typer.Option(help="oip (Open Inference Protocol v2) or json.")
    ] = "oip",
    model: Annotated[
        str | None, typer.Option(help="OIP model name (else read from the URL).")
    ] = None,
    endpoint_id: Annotated[
        str | None, typer.Option("--endpoint", help="Only this endpoint element of the manifest.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="BASTION_API_KEY", help="Credential for the endpoint.")
    ] = None,
    api_key_header: Annotated[str, typer.Option(help="Header carrying the key.")] = "Authorization",
    header: Annotated[
        list[str] | None, typer.Option("--header", "-H", help="Extra 'Name: value' header.")
    ] = None,
    insecure: Annotated[bool, typer.Option(help="Do not verify TLS certificates.")] = False,
    ca_cert: Annotated[Path | None, typer.Option(help="CA bundle for the server.")] = None,
    client_cert: Annotated[Path | None, typer.Option(help="Client certificate (mTLS).")] = None,
    client_key: Annotated[Path | None, typer.Option(help="Client key (mTLS).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = 5.0,
    input_shape: Annotated[
        str | None, typer.Option(help="Shape of one input, e.g. 4 or 28,28 (JSON endpoints).")
    ] = None,
    bounds: Annotated[str | None, typer.Option(help="Valid input range LO,HI, e.g. 0,1.")] = None,
    input_field: Annotated[str, typer.Option(help="JSON: where the batch goes.")] = "inputs",
    label_field: Annotated[
        str, typer.Option(help="JSON: where labels come from.")
    ] = "predictions[].label",
    scores_field: Annotated[
        str, typer.Option(help="JSON: where scores come from.")
    ] = "predictions[].scores",
    probes: Annotated[
        list[str] | None, typer.Option("--probe", "-p", help="Run only this probe (repeatable).")
    ] = None,
    burst: Annotated[int, typer.Option(help="Requests in the rate-limit burst.")] = 40,
    burst_seconds: Annotated[float, typer.Option(help="Longest the burst may last.")] = 5.0,
    probe_seconds: Annotated[float, typer.Option(help="Time bound of each probe.")] = 30.0,
    attack_queries: Annotated[
        int, typer.Option(help="Attack size used to turn the observed rate into time.")
    ] = 10_000,
    declare_auth: Annotated[
        bool | None, typer.Option(help="Declared: the endpoint requires authentication.")
    ] = None,
    declare_rate_limit: Annotated[
        str | None, typer.Option(help="Declared rate limit, e.g. 100/minute.")
    ] = None,
    declare_output_minimisation: Annotated[
        bool | None, typer.Option(help="Declared: only labels/top-k are returned.")
    ] = None,
    declare_input_validation: Annotated[
        bool | None, typer.Option(help="Declared: malformed inputs are rejected.")
    ] = None,
    fmt: Format = "md",
    output: Output = None,
    fail_on: FailOn = "high",
) -> None:
    """Probe live endpoints: output exposure, auth, rate limits, input handling, leaks."""
    from bastion.probes import DeclaredControls, Endpoint, ProbeSettings, probe_report
    from bastion.probes.endpoints import endpoints_from_manifest, make_endpoint, with_declared
    from bastion.probes.runner import load_probes
    from bastion.target import HttpOptions, JsonMapping

    if manifest is None and url is None:
        raise UsageError("give a manifest, --url, or both", hint="bastion probe --help")
    if protocol not in ("oip", "json"):
        raise UsageError(f"--protocol {protocol!r}", hint="oip or json")
    options = HttpOptions(
        headers=_headers(header),
        api_key=api_key,
        api_key_header=api_key_header,
        timeout_s=timeout,
        verify=not insecure,
        ca_cert=str(ca_cert) if ca_cert else None,
        client_cert=str(client_cert) if client_cert else None,
        client_key=str(client_key) if client_key else None,
    )
    shape = _floats(input_shape, "--input-shape")
    lo_hi = _floats(bounds, "--bounds")
    if lo_hi is not None and len(lo_hi) != 2:
        raise UsageError(f"--bounds {bounds!r}", hint="two numbers: LO,HI")
    declared = DeclaredControls(
        auth=declare_auth,
        rate_limit=declare_rate_limit,
        output_minimisation=declare_output_minimisation,
        input_validation=declare_input_validation,
    )
    overrides: dict[str, Any] = {}
    if shape:
        overrides["input_shape"] = tuple(int(v) for v in shape)
    if lo_hi:
        overrides["bounds"] = (lo_hi[0], lo_hi[1])
    system = None
    if manifest is not None:
        from dataclasses import replace

        from bastion.manifest import load_manifest
        from bastion.threatmodel.engine import system_data

        loaded = load_manifest(manifest)
        system = system_data(loaded)
        targets = [
            with_declared(replace(e, **overrides), declared)
            for e in endpoints_from_manifest(loaded, options, endpoint_id)
        ]
        subject = loaded.system.name
        if url is not None:
            if len(targets) != 1:
                ids = ", ".join(e.element_id or e.url for e in targets)
                raise UsageError(
                    f"--url with a manifest needs one endpoint; the manifest has: {ids}",
                    hint="choose it with --endpoint ID",
                )
            (only,) = targets
            moved = make_endpoint(url, only.protocol, only.model_name or model)
            targets = [replace(only, url=moved.url, model_name=moved.model_name)]
        if not targets:
            raise UsageError(
                f"{manifest}: no endpoint element has a url to probe",
                hint="add `url:` to an endpoint element, or use --url",
            )
    else:
        assert url is not None
        kind: Literal["oip", "json"] = "oip" if protocol == "oip" else "json"
        mapping = JsonMapping(input_field, label_field or None, scores_field or None)
        targets = [
            make_endpoint(
                url, kind, model, options=options, mapping=mapping, declared=declared, **overrides
            )
        ]
        subject = url
    if burst < 1 or burst_seconds <= 0 or probe_seconds <= 0:
        raise UsageError("--burst, --burst-seconds and --probe-seconds must be positive")
    settings = ProbeSettings(
        burst=burst,
        burst_seconds=burst_seconds,
        probe_seconds=probe_seconds,
        attack_queries=attack_queries,
        request_timeout_s=timeout,
    )
    chosen = load_probes(probes)  # unknown names fail here, before any request
    with progress_bar() as bar:
        tasks = {e.infer_url: bar.add_task(e.infer_url, total=len(chosen)) for e in targets}

        def tick(endpoint: Endpoint, name: str, index: int, total: int) -> None:
            where = endpoint.infer_url
            bar.update(tasks[where], completed=index, description=f"{where} · {name}")

        report = probe_report(
            targets, settings, probes, progress=tick, subject=subject, system=system
        )
    for note in report.run.notes:
        if "inconclusive" in note or "stopped" in note:
            _err.print(f"[yellow]warning:[/] {escape(note)}", highlight=False, markup=True)
    raise typer.Exit(emit(report, fmt, output, fail_on))


def register(app: typer.Typer) -> None:
    app.command("probe")(probe)
