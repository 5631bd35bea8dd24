"""A model server as its own process, quick to (re)start: `python -m tests.reliability.upstream`.

The reliability tests kill and restart the model server under load, so it is
stdlib only (a multinomial logistic model whose weights the test fits with
scikit-learn and passes as JSON) and answers Open Inference Protocol v2 the way
the guard tests' model server does.
"""

from __future__ import annotations

import json
import math
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INFER = "/v2/models/iris/infer"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    weights: tuple[list[list[float]], list[float]] = ([], [])

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, doc: Any) -> None:
        raw = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        if self.path in ("/v2/health/ready", "/v2/health/live", "/"):
            self._send(200, {"ready": True})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        size = int(self.headers.get("content-length") or 0)
        doc = json.loads(self.rfile.read(size))
        if self.path != INFER:
            self._send(404, {"error": "not found"})
            return
        t = doc["inputs"][0]
        n, d = int(t["shape"][0]), int(t["shape"][1])
        data = [float(v) for v in t["data"]]
        coef, intercept = self.weights
        probs: list[float] = []
        labels: list[int] = []
        for i in range(n):
            row = data[i * d : (i + 1) * d]
            z = [
                sum(w * x for w, x in zip(c, row, strict=True)) + b
                for c, b in zip(coef, intercept, strict=True)
            ]
            top = max(z)
            e = [math.exp(v - top) for v in z]
            s = sum(e)
            p = [v / s for v in e]
            probs += p
            labels.append(p.index(max(p)))
        self._send(
            200,
            {
                "model_name": "iris",
                "outputs": [
                    {
                        "name": "probabilities",
                        "shape": [n, len(coef)],
                        "datatype": "FP64",
                        "data": probs,
                    },
                    {"name": "label", "shape": [n], "datatype": "INT64", "data": labels},
                ],
            },
        )


if __name__ == "__main__":
    weights = json.loads(sys.argv[2])
    Handler.weights = (weights["coef"], weights["intercept"])
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
