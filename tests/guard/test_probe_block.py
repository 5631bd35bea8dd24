"""The rate-limit probe against a guard that blocks: a block is a limit, not its absence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bastion.guard import Guard, load_config
from bastion.guard.adapters.asgi import GuardMiddleware
from bastion.probes import Endpoint, probe_endpoint
from bastion.registry import registry
from bastion.target import HttpOptions
from bastion.testing import ServerConfig, model_app, serve_in_background
from tests.guard.conftest import token
from tests.guard.test_policies import RepeatDetector


def test_a_guard_block_mid_burst_is_observed_as_a_limit(
    write_config: Any, tmp_path: Path, model: Any
) -> None:
    registry("detectors").register("repeats", RepeatDetector)
    cfg = yaml.safe_load(write_config().read_text())
    cfg["policies"] = [
        cfg["policies"][0],  # api_key
        {
            "kind": "detection",
            "detectors": [{"kind": "repeats"}],
            "actions": [{"at": 5, "action": "block"}],
        },
    ]
    path = tmp_path / "block.yaml"
    path.write_text(yaml.safe_dump(cfg))
    guard = Guard(load_config(path))
    app = GuardMiddleware(model_app(model, ServerConfig.vulnerable(model_name="iris")), guard)
    try:
        with serve_in_background(app) as url:
            endpoint = Endpoint(
                url=url,
                model_name="iris",
                options=HttpOptions(api_key=token("alice")),
                input_shape=(4,),
                bounds=(0.0, 8.0),
            )
            run = probe_endpoint(endpoint, names=["rate_limit"])
    finally:
        guard.close()
    seen = run.observations["rate_limit"]
    # the burst repeats one input: the detector blocks alice after a few answers
    assert seen["blocked"] is True and seen["limited"] is True
    assert seen["statuses"]["403"] == 1 and 0 < seen["accepted"] == seen["first_limited_at"]
    # a block is no missing limit (P105), and it owes no Retry-After (P106)
    assert not {"P105", "P106"} & {f.rule_id for f in run.findings}
    assert round(seen["sustainable_rate_per_s"] * 86_400) == seen["accepted"]
