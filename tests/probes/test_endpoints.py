"""Where probes aim: URLs as users type them, and endpoint elements of a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bastion.errors import UsageError
from bastion.manifest import load_manifest
from bastion.probes import DeclaredControls
from bastion.probes.endpoints import (
    endpoints_from_manifest,
    make_endpoint,
    split_oip_url,
    with_declared,
)

MANIFEST = """\
version: 1
system:
  name: Two endpoints
elements:
  - id: scores_api
    type: endpoint
    url: https://ml.example/score
    protocol: json
    model: m
    mapping: {input_path: payload.rows, label_path: "out[].cls", scores_path: null}
    controls: {auth: none, input_validation: true}
  - id: internal_api
    type: endpoint
    protocol: oip
  - id: m
    type: model
    input: {domain: tabular, shape: [30], min: -5, max: 5}
    output: {kind: scores, decimals: 8}
    controls: {output_minimisation: true}
"""


@pytest.mark.parametrize(
    ("url", "base", "model"),
    [
        ("http://h:8/v2/models/iris/infer", "http://h:8", "iris"),
        ("http://h:8/v2/models/iris/versions/3/infer", "http://h:8", "iris"),
        ("http://h:8/prefix/v2", "http://h:8/prefix", None),
        ("http://h:8/", "http://h:8", None),
    ],
)
def test_split_oip_url(url: str, base: str, model: str | None) -> None:
    assert split_oip_url(url) == (base, model)


def test_make_endpoint_reads_the_model_from_the_path() -> None:
    endpoint = make_endpoint("http://h:8/v2/models/iris/infer")
    assert (endpoint.url, endpoint.model_name) == ("http://h:8", "iris")
    assert endpoint.infer_url == "http://h:8/v2/models/iris/infer"


def test_manifest_endpoints_carry_mapping_model_and_declarations(tmp_path: Path) -> None:
    path = tmp_path / "system.yaml"
    path.write_text(MANIFEST)
    endpoints = endpoints_from_manifest(load_manifest(path))
    assert len(endpoints) == 1  # the endpoint without a url is not probed
    (endpoint,) = endpoints
    assert endpoint.element_id == "scores_api" and endpoint.location is not None
    assert endpoint.location.line == 5
    assert endpoint.mapping.input_field == "payload.rows"
    assert endpoint.mapping.label_field == "out[].cls" and endpoint.mapping.scores_field is None
    assert endpoint.input_shape == (30,) and endpoint.bounds == (-5.0, 5.0)
    assert endpoint.declared == DeclaredControls(
        auth=False, rate_limit=None, output_minimisation=True, input_validation=True
    )
    merged = with_declared(endpoint, DeclaredControls(rate_limit="5/s", auth=True))
    assert merged.declared.rate_limit == "5/s" and merged.declared.auth is True
    assert merged.declared.input_validation is True
    with pytest.raises(UsageError, match="known: scores_api, internal_api"):
        endpoints_from_manifest(load_manifest(path), only="nope")


@pytest.mark.parametrize(
    ("text", "allowance"),
    [
        ("100/minute", (100, 60.0)),
        ("10 per 2 seconds", (10, 2.0)),
        ("30/s", (30, 1.0)),
        ("5", (5, 1.0)),
        (None, None),
    ],
)
def test_declared_allowance(text: str | None, allowance: tuple[int, float] | None) -> None:
    from bastion.probes.access import declared_allowance

    assert declared_allowance(text) == allowance


def test_manifest_endpoint_to_ledger_counts_match_the_server(serve: Any, tmp_path: Path) -> None:
    import numpy as np

    from bastion.probes.endpoints import target_for
    from bastion.target import Ledger, OutputKind
    from bastion.testing import ServerConfig

    path = tmp_path / "system.yaml"
    with serve(ServerConfig.vulnerable("oip")) as (url, app):
        path.write_text(
            "version: 1\nsystem: {name: s}\nelements:\n"
            f"  - {{id: api, type: endpoint, url: '{url}/v2/models/iris/infer', model: m}}\n"
            "  - {id: m, type: model, input: {shape: [4], min: 0, max: 8}}\n"
        )
        (endpoint,) = endpoints_from_manifest(load_manifest(path))
        ledger = Ledger(target_for(endpoint), budget=5)
        assert ledger.info().output is OutputKind.SCORES and ledger.info().bounds == (0.0, 8.0)
        ledger.query(np.full((5, 4), 4.0))
        ledger.close()
        assert app.state.bastion.inputs == ledger.queries == 5
