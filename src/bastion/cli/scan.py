"""`bastion scan`, `sign`, `verify`, `keygen`, `bom`: artifacts checked before anyone loads them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bastion.cli.output import FailOn, Format, Output, emit
from bastion.errors import PluginError, UsageError

__all__ = ["register"]

_err = Console(stderr=True)
_STYLE = {"malicious": "bold red", "suspicious": "yellow", "could-not-scan": "magenta"}

Paths = Annotated[
    list[Path],
    typer.Argument(
        help="Model files, directories, bundles (wheel, APK, JAR, zip, tar) or a SYSTEM.yaml.",
        show_default=False,
    ),
]


def _limits(max_depth: int, max_gib: float, timeout: float) -> object:
    from bastion.scan import ScanLimits

    if max_depth < 1 or max_gib <= 0 or timeout <= 0:
        raise UsageError("scan bounds must be positive", hint="e.g. --max-depth 8 --max-gib 16")
    return ScanLimits(
        max_depth=max_depth, max_total_bytes=int(max_gib * (1 << 30)), max_seconds=timeout
    )


def scan(
    paths: Paths,
    fmt: Format = "md",
    output: Output = None,
    fail_on: FailOn = "medium",
    max_depth: Annotated[int, typer.Option(help="Deepest container nesting to open.")] = 8,
    max_gib: Annotated[
        float, typer.Option(help="Most data to decompress per file, in GiB (zip bombs).")
    ] = 16.0,
    timeout: Annotated[float, typer.Option(help="Seconds allowed per top-level file.")] = 300.0,
) -> None:
    """Scan model artifacts without loading them: verdict clean/suspicious/malicious/could-not-scan.

    Exit 0 when no finding reaches --fail-on (default medium), 1 when one does,
    2 on bad usage, 3 when a file cannot be read.
    """
    from bastion.registry import registry
    from bastion.scan import ScanLimits
    from bastion.scan.manifest_pins import Declared, expand_manifests, format_mismatches
    from bastion.scan.plugin import ArtifactScanner, ModelArtifactScanner
    from bastion.scan.results import report_of

    limits = _limits(max_depth, max_gib, timeout)
    assert isinstance(limits, ScanLimits)
    declared: dict[str, Declared] = {}
    targets, pin_findings = expand_manifests(paths, declared)
    findings = list(pin_findings)
    builtin = ModelArtifactScanner(limits)
    findings += builtin.scan(targets)
    findings += format_mismatches(declared, builtin.last)
    for name in registry("scanners").names():
        if name == builtin.name:
            continue
        plugin = registry("scanners").get(name)()
        if not isinstance(plugin, ArtifactScanner):
            raise PluginError(f"scanner {name!r} has no scan(paths) method")
        findings += plugin.scan(targets)
    for result in builtin.last:
        if result.artifacts or result.issues:
            verdict = result.verdict.value
            style = _STYLE.get(verdict, "green")
            _err.print(f"[{style}]{verdict:>14}[/] {result.path}", highlight=False)
    report = report_of(builtin.last, command="scan", subject=" ".join(map(str, paths)))
    report = report.model_copy(update={"findings": tuple(findings)}).sorted()
    raise typer.Exit(emit(report, fmt, output, fail_on))


def sign(
    model: Annotated[Path, typer.Argument(help="Model file or directory to sign.")],
    key: Annotated[Path, typer.Option(help="PEM elliptic-curve private key.")],
    signature: Annotated[
        Path | None, typer.Option(help="Where to write the signature (default: beside the model).")
    ] = None,
) -> None:
    """Sign a model file or directory with OpenSSF model-signing (private key, offline)."""
    from bastion.scan.signing import sign_model

    written = sign_model(model, key, signature)
    _err.print(f"signed {model} → {written}", highlight=False)


def verify(
    model: Annotated[Path, typer.Argument(help="Model file or directory to verify.")],
    key: Annotated[Path, typer.Option(help="PEM public key matching the signing key.")],
    signature: Annotated[Path | None, typer.Option(help="Signature (default: beside it).")] = None,
    fmt: Format = "md",
    output: Output = None,
    fail_on: FailOn = "high",
) -> None:
    """Verify a model's signature; a mismatch is a high finding (exit 1)."""
    from bastion.scan.signing import verify_report

    raise typer.Exit(emit(verify_report(model, key, signature), fmt, output, fail_on))


def keygen(
    out: Annotated[Path, typer.Option(help="Directory for private.pem and public.pem.")] = Path(
        "."
    ),
) -> None:
    """Create an elliptic-curve (P-256) key pair for `bastion sign`/`verify`."""
    from bastion.scan.signing import generate_keys

    private, public = generate_keys(out)
    _err.print(f"wrote {private} (keep secret) and {public}", highlight=False)


def bom(
    paths: Paths,
    output: Output = None,
) -> None:
    """Write a CycloneDX 1.6 ML-BOM of the models found, with hashes, formats and verdicts."""
    from bastion.scan import Scanner
    from bastion.scan.bom import render_bom
    from bastion.scan.manifest_pins import expand_manifests

    targets, _ = expand_manifests(paths)
    text = render_bom(Scanner().scan_paths(targets))
    if output is None:
        typer.echo(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        _err.print(f"ML-BOM → {output}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)
    app.command("sign")(sign)
    app.command("verify")(verify)
    app.command("keygen")(keygen)
    app.command("bom")(bom)
