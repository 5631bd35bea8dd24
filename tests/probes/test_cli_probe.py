"""`bastion probe` as a user runs it: from a URL or a manifest, with clean errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bastion.testing import ServerConfig, serve_in_background
from bastion.testing.manifests import iris_service_manifest


def test_probe_url_of_vulnerable_server(serve: Any, run_cli: Any) -> None:
    with serve(ServerConfig.vulnerable("json")) as (url, _):
        done = run_cli(
            "probe",
            "--url",
            url + "/predict",
            "--protocol",
            "json",
            "--input-shape",
            "4",
            "--bounds",
            "0,8",
            "-f",
            "json",
        )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    rules = {f["rule_id"] for f in report["findings"]}
    assert {"P101", "P103", "P105", "P107", "P108", "P109", "P110", "P111"} <= rules
    assert report["run"]["command"] == "probe" and "findings" in done.stderr


def test_probe_hardened_server_with_key_is_clean(serve: Any, run_cli: Any) -> None:
    config = ServerConfig.hardened("oip")
    with serve(config) as (url, _):
        done = run_cli(
            "probe",
            "--url",
            url + "/v2/models/iris/infer",
            "--api-key",
            config.api_key or "",
            "--bounds",
            "0,8",
            "-f",
            "json",
            "--fail-on",
            "low",
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["findings"] == []


def test_probe_manifest_points_findings_at_the_element(
    serve: Any, run_cli: Any, tmp_path: Path
) -> None:
    manifest = tmp_path / "system.yaml"
    with serve(ServerConfig.vulnerable("oip")) as (url, _):
        manifest.write_text(iris_service_manifest(url))
        done = run_cli("probe", str(manifest), "-f", "json", "-o", str(tmp_path / "r.json"))
    assert done.returncode == 1, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    found = {f["rule_id"]: f for f in report["findings"]}
    # Declared auth, rate limit and (via the label-only model) output minimisation: all refuted.
    assert {"P120", "P121", "P122"} <= set(found)
    subject = found["P121"]["subject"]
    assert subject["id"] == "iris_api" and subject["location"]["line"] == 5
    assert report["system"]["system"]["name"] == "Iris service"


def test_unreachable_endpoint_exits_3_with_one_line(run_cli: Any) -> None:
    done = run_cli("probe", "--url", "http://127.0.0.1:9/v2/models/iris/infer", "--timeout", "2")
    assert done.returncode == 3
    assert "cannot connect to http://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0


def test_tls_error_exits_3(serve: Any, run_cli: Any) -> None:
    with serve(ServerConfig.vulnerable("oip")) as (url, _):
        https = url.replace("http://", "https://")
        done = run_cli("probe", "--url", https + "/v2/models/iris/infer")
    assert done.returncode == 3 and "TLS handshake" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("route", ["/page", "/missing"])
def test_non_json_or_wrong_endpoint_exits_3(run_cli: Any, route: str) -> None:
    async def page(request: object) -> HTMLResponse:
        return HTMLResponse("<html>welcome</html>")

    app = Starlette(routes=[Route("/page", page, methods=["POST", "GET"])])
    with serve_in_background(app) as url:
        done = run_cli("probe", "--url", url + route, "--protocol", "json", "--input-shape", "4")
    assert done.returncode == 3, done.stdout + done.stderr
    assert ("non-JSON" in done.stderr) if route == "/page" else ("HTTP 404" in done.stderr)
    assert "Traceback" not in done.stderr


def test_usage_errors_exit_2(run_cli: Any) -> None:
    assert run_cli("probe").returncode == 2
    done = run_cli("probe", "--url", "http://127.0.0.1:9", "--protocol", "grpc")
    assert done.returncode == 2 and "oip or json" in done.stderr
    done = run_cli("probe", "--url", "http://127.0.0.1:9/v2/models/m/infer", "-p", "nosuch")
    assert done.returncode == 2 and "unknown probe" in done.stderr
    done = run_cli("probe", "--url", "http://127.0.0.1:9/v2/models/m/infer", "--burst", "0")
    assert done.returncode == 2 and "must be positive" in done.stderr


def test_manifest_endpoint_probed_at_another_url_keeps_its_identity(
    serve: Any, run_cli: Any, tmp_path: Path
) -> None:
    """How a guard is verified: same element and fingerprints, a different URL."""
    manifest = tmp_path / "system.yaml"
    manifest.write_text(iris_service_manifest("http://127.0.0.1:9"))  # the original, unreachable
    with serve(ServerConfig.vulnerable("oip")) as (url, _):
        done = run_cli(
            "probe",
            str(manifest),
            "--url",
            url + "/v2/models/iris/infer",
            "-f",
            "json",
            "-p",
            "auth",
            "-p",
            "declared",
        )
    assert done.returncode == 1, done.stdout + done.stderr
    findings = json.loads(done.stdout)["findings"]
    assert {f["rule_id"] for f in findings} == {"P103", "P120"}
    assert {f["subject"]["id"] for f in findings} == {"iris_api"}
    assert {f["subject"]["name"] for f in findings} == {url + "/v2/models/iris/infer"}


def test_without_credentials_the_cli_says_what_it_could_not_measure(
    serve: Any, run_cli: Any
) -> None:
    config = ServerConfig.hardened("oip")
    with serve(config) as (url, _):
        done = run_cli(
            "probe",
            "--url",
            url + "/v2/models/iris/infer",
            "--input-shape",
            "4",
            "-p",
            "output",
            "-p",
            "auth",
            "-f",
            "json",
        )
    assert done.returncode == 0, done.stderr
    assert "warning:" in done.stderr and "output inconclusive" in done.stderr
    assert "--api-key" in done.stderr
