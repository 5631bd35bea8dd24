"""Guard replicas on a real Redis: one quota across processes; fail-closed/open when it dies."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from bastion.guard import Guard, load_config
from bastion.guard.adapters.wrap import GuardDenied, wrap
from tests.guard.conftest import auth, base_config, token
from tests.guard.servers import ThreadServer, guard_process, model_app, redis_server
from tests.guard.test_policies import borderline_virginica

pytestmark = [pytest.mark.redis, pytest.mark.network]

INFER = "/v2/models/iris/infer"
BODY = {
    "inputs": [
        {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
    ]
}


def _config(tmp_path: Path, keys_file: Path, redis_url: str, name: str, **over: Any) -> Path:
    cfg = base_config(
        tmp_path,
        keys_file,
        store={"kind": "redis", "url": redis_url},
        audit={"path": str(tmp_path / f"audit-{name}.jsonl")},
    )
    cfg.update(over)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_two_guard_processes_sharing_redis_enforce_one_quota(
    tmp_path: Path, keys_file: Path, redis_url: str, model: Any
) -> None:
    a = _config(tmp_path, keys_file, redis_url, "a")
    b = _config(tmp_path, keys_file, redis_url, "b")
    with (
        ThreadServer(model_app(model)) as upstream,
        guard_process(a, upstream) as ga,
        guard_process(b, upstream) as gb,
    ):
        codes = [
            httpx.post((ga, gb)[i % 2] + INFER, json=BODY, headers=auth("alice")).status_code
            for i in range(6)
        ]
        assert codes == [200] * 5 + [429]  # 5/minute, split over both replicas
        assert httpx.post(ga + INFER, json=BODY, headers=auth("alice")).status_code == 429
        assert httpx.post(gb + INFER, json=BODY, headers=auth("bob")).status_code == 200
        # the review queue is shared too: a case held by one replica is visible on the other
        x = borderline_virginica(model).ravel().tolist()
        one = {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": x}
        held = httpx.post(ga + INFER, headers=auth("bob"), json={"inputs": [one]})
        assert held.status_code == 202
        listed = httpx.get(gb + "/guard/review", headers=auth("rita")).json()["cases"]
        assert held.json()["case"] in [c["id"] for c in listed]


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_redis_down_follows_the_failure_mode_and_recovers(
    tmp_path: Path, keys_file: Path, model: Any, mode: str
) -> None:
    import shutil

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server binary not on PATH (apt-get install redis-server)")
    with redis_server() as (url, proc):
        quota = {"kind": "quota", "per_principal": ["100/minute"], "on_store_error": mode}
        cfg = base_config(
            tmp_path, keys_file, store={"kind": "redis", "url": url, "timeout_s": 0.2}
        )
        cfg["policies"][1] = quota
        path = tmp_path / "g.yaml"
        path.write_text(yaml.safe_dump(cfg))
        guard = Guard(load_config(path))
        g = wrap(guard, model.predict_proba)
        x = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)
        g(x, api_key=token("alice"))
        port = url.rsplit(":", 1)[1].split("/")[0]
        proc.terminate()
        proc.wait(timeout=10)
        if mode == "closed":
            with pytest.raises(GuardDenied) as err:
                g(x, api_key=token("alice"))
            assert err.value.deny.status == 503 and err.value.deny.reason == "store_unavailable"
        else:
            assert g(x, api_key=token("alice")).labels.tolist() == [0]
        assert not guard.ready()
        restarted = subprocess.Popen(
            [
                "redis-server",
                "--port",
                port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            from tests.guard.servers import wait_tcp

            wait_tcp(int(port))
            assert g(x, api_key=token("alice")).labels.tolist() == [0]  # no guard restart
            assert guard.ready()
        finally:
            restarted.terminate()
            restarted.wait(timeout=10)
            guard.close()
