"""`bastion guard ...`: run the guard proxy, check its audit log, work the review queue."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.errors import UsageError

if TYPE_CHECKING:
    from bastion.guard.stores import Store

__all__ = ["register"]

guard_app = typer.Typer(
    name="guard",
    help="Run the runtime guard in front of a model and manage its state.",
    no_args_is_help=True,
)
review_app = typer.Typer(name="review", help="The human review queue.", no_args_is_help=True)
keys_app = typer.Typer(name="keys", help="API keys for the guard.", no_args_is_help=True)
guard_app.add_typer(review_app)
guard_app.add_typer(keys_app)


class Server(StrEnum):
    lean = "lean"
    uvicorn = "uvicorn"


ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The guard.yaml to use.")]


@guard_app.command("serve")
def serve(
    config: ConfigOpt,
    upstream: Annotated[str | None, typer.Option(help="Model server base URL.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    announce: Annotated[
        bool, typer.Option(help="Print 'READY <url>' on stdout once listening (for scripts).")
    ] = False,
    server: Annotated[
        Server,
        typer.Option(
            help="HTTP front end: the guard's own lean HTTP/1.1 server, or uvicorn (the same "
            "proxy as an ASGI app; more CPU per request)."
        ),
    ] = Server.lean,
) -> None:
    """Serve the guard as a reverse proxy in front of an OIP v2 or JSON model server."""
    _need_serve_extra()
    if server is Server.uvicorn:
        try:
            import uvicorn
        except ImportError:
            raise UsageError(
                "--server uvicorn needs uvicorn", hint="pip install 'bastion-ml[serve]'"
            ) from None
    from bastion.guard.adapters.proxy import GuardProxy
    from bastion.guard.config import load_config
    from bastion.guard.core import Guard

    cfg = load_config(config)
    url = upstream or cfg.proxy.upstream
    if not url:
        raise UsageError(
            "no upstream model server",
            hint="pass --upstream URL or set proxy.upstream in the config",
        )
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--upstream {url!r} is not an http(s) URL")
    guard = Guard(cfg)
    typer.echo(
        f"guard: {url} behind {host} ({len(guard.policies)} policies, store {guard.store.name})",
        err=True,
    )
    from bastion.guard.adapters.listener import listen

    # Bind first so port 0 works and the announced URL is already accepting connections.
    try:
        sock = listen(host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    if announce:
        typer.echo(f"READY http://{host}:{bound}")
    proxy = GuardProxy(guard, url)
    if server is Server.lean:
        from bastion.guard.adapters.front import run

        run(proxy, sock)
        return
    uvicorn.Server(
        uvicorn.Config(
            proxy,
            log_level="warning",
            access_log=False,
            lifespan="on",
            # the guard identifies callers by credentials, never by X-Forwarded-For
            proxy_headers=False,
        )
    ).run(sockets=[sock])


@guard_app.command("init")
def init(
    manifest: Annotated[
        Path | None, typer.Argument(help="The system manifest (system.yaml).")
    ] = None,
    from_report: Annotated[
        Path | None,
        typer.Option("--from-report", help="An audit's JSON report: policies follow its findings."),
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write.")] = Path(
        "guard.yaml"
    ),
    endpoint: Annotated[str | None, typer.Option(help="Endpoint id, if several.")] = None,
    detect_profile: Annotated[
        Path | None,
        typer.Option(help="With --from-report: a `bastion detect fit` profile to detect with."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a starting guard.yaml (and an empty key file) from a manifest or an audit report."""
    from bastion.guard.starter import render, starter_config
    from bastion.manifest import load_manifest

    if (manifest is None) == (from_report is None):
        raise UsageError("give a manifest or --from-report REPORT.json (exactly one)")
    if output.exists() and not force:
        raise UsageError(f"{output} exists", hint="pass --force to overwrite it")
    output.parent.mkdir(parents=True, exist_ok=True)
    if from_report is not None:
        from bastion.cli.audit import read_report
        from bastion.guard.plan import plan_from_report, render_plan

        config, answers = plan_from_report(
            read_report(from_report), output.parent, endpoint, detect_profile
        )
        output.write_text(render_plan(config, answers, str(from_report)), encoding="utf-8")
    else:
        assert manifest is not None
        m = load_manifest(manifest)
        config = starter_config(m, output.parent, endpoint)
        high = any(p.get("kind") == "decision" for p in config["policies"])
        output.write_text(render(config, str(manifest), high), encoding="utf-8")
    keys = output.parent / "guard-keys.yaml"
    if not keys.exists():
        keys.write_text("# entries from `bastion guard keys new`\nkeys: []\n", encoding="utf-8")
    typer.echo(f"wrote {output} ({len(config['policies'])} policies); add keys to {keys}", err=True)


@guard_app.command("verify-log")
def verify_log(
    files: Annotated[list[Path], typer.Argument(help="Audit log file(s); rotated segments too.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check an audit log's hash chain; exit 1 and say where if it was tampered with."""
    from bastion.guard.verification import verify_log as check

    verdict = check(files)
    if as_json:
        doc = {
            "ok": verdict.ok,
            "records": verdict.records,
            "head": verdict.head,
            "problems": [vars(p) for p in verdict.problems],
            "notes": verdict.notes,
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        for p in verdict.problems:
            typer.echo(str(p))
        for n in verdict.notes:
            typer.echo(f"note: {n}", err=True)
        state = "intact" if verdict.ok else f"{len(verdict.problems)} problem(s)"
        typer.echo(f"{verdict.records} records, chain {state}, head {verdict.head[:16]}", err=True)
    raise typer.Exit(0 if verdict.ok else 1)


def _need_serve_extra() -> None:
    """The guard's runtime needs `limits`, `prometheus_client`, `httptools` (the `serve` extra)."""
    import importlib.util

    need = ("limits", "prometheus_client", "httptools")
    missing = [m for m in need if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"the guard needs {', '.join(missing)}", hint="pip install 'bastion-ml[serve]'"
        )


def _store(config: Path) -> Store:
    from bastion.guard.config import load_config
    from bastion.guard.stores import open_store

    _need_serve_extra()

    return open_store(load_config(config))


@review_app.command("list")
def review_list(
    config: ConfigOpt,
    status: Annotated[str, typer.Option(help="pending, resolved or all.")] = "pending",
) -> None:
    """List held requests (JSON lines on stdout)."""
    from dataclasses import asdict

    store = _store(config)
    for case in store.list_cases(None if status == "all" else status, limit=10_000):
        typer.echo(json.dumps(asdict(case), sort_keys=True))
    store.close()


@review_app.command("resolve")
def review_resolve(
    config: ConfigOpt,
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    resolution: Annotated[str, typer.Argument(help="The decision, e.g. approve or a label.")],
    reviewer: Annotated[str, typer.Option(help="Who decided.")] = "cli",
) -> None:
    """Resolve a held request."""
    from dataclasses import asdict

    store = _store(config)
    case = store.resolve_case(case_id, resolution, reviewer)
    store.close()
    if case is None:
        raise UsageError(f"no review case {case_id!r}", hint="see `bastion guard review list`")
    typer.echo(json.dumps(asdict(case), sort_keys=True))


@keys_app.command("new")
def keys_new(
    principal: Annotated[str, typer.Option(help="Who the key belongs to.")],
    scope: Annotated[list[str], typer.Option(help="Scope(s), e.g. predict, scores, review.")],
) -> None:
    """Make a key: the token goes to stdout, the key-file entry (hash only) to stderr."""
    import yaml

    from bastion.guard.policies.auth import new_key

    token, entry = new_key(principal, scope or ["predict"])
    sys.stdout.write(token + "\n")
    sys.stderr.write("# add under `keys:` in the key file\n")
    sys.stderr.write(yaml.safe_dump([entry], sort_keys=False))


def register(app: typer.Typer) -> None:
    app.add_typer(guard_app)
