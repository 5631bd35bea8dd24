"""A malformed input that makes the server hang is a high-severity finding, within the timeout."""

from __future__ import annotations

import asyncio
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bastion.probes import Endpoint, ProbeSettings, probe_endpoint
from bastion.testing import serve_in_background


async def predict(request: Request) -> JSONResponse:
    body = await request.body()
    if b"NaN" in body:
        await asyncio.sleep(1.5)  # stuck on the bad value
    if not body.startswith(b'{"inputs"'):
        return JSONResponse({"error": "bad request"}, status_code=400)
    return JSONResponse({"predictions": [{"label": 0}]})


def test_hang_on_nan_is_reported() -> None:
    app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
    settings = ProbeSettings(request_timeout_s=0.3)
    with serve_in_background(app) as url:
        t0 = time.monotonic()
        run = probe_endpoint(
            Endpoint(url + "/predict", "json", input_shape=(4,)), settings, names=["inputs"]
        )
        elapsed = time.monotonic() - t0
    (broken,) = [f for f in run.findings if f.rule_id == "P108"]
    assert broken.severity == "high"
    assert broken.evidence["cases"]["nan"] == {"status": None, "outcome": "hang"}
    assert elapsed < 5  # each hang costs the timeout, not the server's delay
