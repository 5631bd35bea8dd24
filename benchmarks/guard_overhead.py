"""What the guard costs: a scikit-learn model direct vs in-process, ASGI middleware, proxy.

One run on loopback, full policy stack on (API key, quota, input validation,
detection hook, decision policy, output minimisation, hash-chained audit log).
Prints p50/p99 latency, throughput and the ratios against the targets:

* in-process added p50 <= 0.3 ms for a tabular model;
* reverse-proxy throughput >= 0.85x direct.

    PYTHONPATH=src python benchmarks/guard_overhead.py [--seconds 5] [--concurrency 8]
        [--proxy-servers lean,uvicorn]

Servers run as separate processes, one worker each: the model (and the ASGI
middleware) on uvicorn, the proxy as `bastion guard serve` with its own HTTP/1.1
front end (`--proxy-servers lean,uvicorn` adds a row for the same proxy behind
uvicorn). The load generator is a small keep-alive HTTP/1.1 client so it costs
little CPU itself.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench01.secret-for-benchmark"
# The proxy's cost per request is fixed; the model's is not. A tiny model is the worst
# case for a proxy (the HTTP hop is all the work there is); a small neural network is
# closer to what is served in production.
MODELS = {
    "iris-logreg": "logistic regression on iris (4 features)",
    "digits-mlp": "MLP 64-256-256-10 on digits",
    "cancer-forest": "random forest, 100 trees, on breast cancer (30 features)",
}


def train(name: str) -> tuple[Any, list[float], float]:
    """The model, one row to send, and the upper bound of its features."""
    from sklearn.datasets import load_digits, load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if name == "iris-logreg":
        x, y = load_iris(return_X_y=True)
        return LogisticRegression(max_iter=500).fit(x, y), [6.0, 2.9, 4.5, 1.5], 10.0
    if name == "digits-mlp":
        x, y = load_digits(return_X_y=True)
        with warnings.catch_warnings():  # accuracy does not matter here, per-query cost does
            warnings.simplefilter("ignore")
            mlp = MLPClassifier((256, 256), max_iter=10, random_state=0).fit(x, y)
        return mlp, [float(v) for v in x[0]], 16.0
    if name == "cancer-forest":
        from sklearn.datasets import load_breast_cancer
        from sklearn.ensemble import RandomForestClassifier

        x, y = load_breast_cancer(return_X_y=True)
        forest = RandomForestClassifier(100, n_jobs=1, random_state=0).fit(x, y)
        return forest, [float(v) for v in x[0]], float(x.max()) + 1.0
    raise SystemExit(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def model_app(model: Any) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def infer(request: Request) -> JSONResponse:
        t = (await request.json())["inputs"][0]
        p = model.predict_proba(np.asarray(t["data"], dtype=np.float64).reshape(t["shape"]))
        return JSONResponse(
            {
                "model_name": "model",
                "outputs": [
                    {
                        "name": "probabilities",
                        "shape": list(p.shape),
                        "datatype": "FP64",
                        "data": p.ravel().tolist(),
                    },
                    {
                        "name": "label",
                        "shape": [len(p)],
                        "datatype": "INT64",
                        "data": p.argmax(1).tolist(),
                    },
                ],
            }
        )

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({"ready": True})

    return Starlette(
        routes=[
            Route("/v2/models/model/infer", infer, methods=["POST"]),
            Route("/v2/health/ready", ready),
        ]
    )


def write_config(tmp: Path, width: int, high: float) -> Path:
    secret = TOKEN.partition(".")[2]
    (tmp / "keys.yaml").write_text(
        json.dumps(
            {
                "keys": [
                    {
                        "id": "bench01",
                        "principal": "bench",
                        "scopes": ["predict"],
                        "sha256": hashlib.sha256(secret.encode()).hexdigest(),
                    }
                ]
            }
        )
    )
    cfg = {
        "model": {
            "name": "model",
            "protocol": "oip",
            "inputs": [
                {"name": "input-0", "shape": [-1, width], "dtype": "float32", "min": 0, "max": high}
            ],
        },
        "store": {"kind": "memory"},
        "audit": {"path": str(tmp / f"audit-{{pid}}-{time.time_ns()}.jsonl")},
        "policies": [
            {"kind": "api_key", "keys_file": "keys.yaml"},
            {
                "kind": "quota",
                "per_principal": ["1000000/second", "100000000/day"],
                "global": ["1000000/second"],
            },
            {"kind": "input_validation"},
            {"kind": "detection", "actions": [{"at": 10, "action": "label_only"}]},
            {
                "kind": "decision",
                "confidence_below": 0.05,
                "route": "fallback",
                "fallback": {"label": 0},
            },
            {"kind": "output_minimisation", "default": {"mode": "top_k", "k": 1, "decimals": 2}},
        ],
    }
    path = tmp / "guard.yaml"
    path.write_text(json.dumps(cfg))
    return path


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


# --- in-process --------------------------------------------------------------------------


def bench_inprocess(config: Path, n: int, name: str) -> dict[str, dict[str, float]]:
    from bastion.guard import Guard, load_config
    from bastion.guard.adapters.wrap import wrap

    model, row, _ = train(name)
    guard = Guard(load_config(config))
    guarded = wrap(guard, model.predict_proba)
    x = np.asarray([row], dtype=np.float32)
    fns = {
        "direct": lambda: model.predict_proba(x),
        "in-process guard": lambda: guarded(x, api_key=TOKEN),
    }
    lat: dict[str, list[float]] = {name: [] for name in fns}
    spent = dict.fromkeys(fns, 0.0)
    for _ in range(200):
        for fn in fns.values():
            fn()
    # alternate the two so that load from other processes hits both alike
    cpu = dict.fromkeys(fns, 0.0)
    for _ in range(n):
        for name, fn in fns.items():
            c = time.thread_time()
            t = time.perf_counter()
            fn()
            dt = time.perf_counter() - t
            cpu[name] += time.thread_time() - c
            lat[name].append(dt)
            spent[name] += dt
    out = {
        name: {
            "p50": pct(v, 50),
            "p99": pct(v, 99),
            "rps": n / spent[name],
            "cpu_ms": cpu[name] / n * 1000,
        }
        for name, v in lat.items()
    }
    guard.close()
    return out


# --- HTTP --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(kind: str, port: int, config: str, name: str) -> None:
    """Child process: the model served directly, or with the guard's ASGI middleware."""
    import uvicorn

    app = model_app(train(name)[0])
    if kind == "middleware":
        from bastion.guard import Guard, load_config
        from bastion.guard.adapters.asgi import GuardMiddleware

        app = GuardMiddleware(app, Guard(load_config(config)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start(args: list[str], port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen(
        args, env=env, stdout=None if os.environ.get("BENCH_DEBUG") else subprocess.DEVNULL
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server on port {port} did not start")


def request_bytes(port: int, row: list[float]) -> bytes:
    body = json.dumps(
        {"inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP32", "data": row}]}
    ).encode()
    head = (
        f"POST /v2/models/model/infer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _worker(
    port: int, payload: bytes, stop: float, lat: list[float], status: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop:
            t = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            code = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t)
            status[code] = status.get(code, 0) + 1
    finally:
        writer.close()


def cpu_seconds(*procs: subprocess.Popen[bytes]) -> float:
    """User+system CPU of the server processes, from /proc (Linux)."""
    total = 0.0
    for p in procs:
        try:
            fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def load(port: int, seconds: float, concurrency: int, row: list[float]) -> dict[str, float]:
    payload = request_bytes(port, row)
    lat: list[float] = []
    status: dict[int, int] = {}
    t0 = time.perf_counter()
    await asyncio.gather(
        *[_worker(port, payload, t0 + seconds, lat, status) for _ in range(concurrency)]
    )
    wall = time.perf_counter() - t0
    bad = sum(v for k, v in status.items() if k != 200)
    return {
        "p50": pct(lat, 50),
        "p99": pct(lat, 99),
        "rps": len(lat) / wall,
        "non200": bad,
        "n": len(lat),
    }


def measure(
    port: int, seconds: float, concurrency: int, row: list[float], *procs: subprocess.Popen[bytes]
) -> dict[str, float]:
    asyncio.run(load(port, 0.5, concurrency, row))  # warm-up
    before = cpu_seconds(*procs)
    out = asyncio.run(load(port, seconds, concurrency, row))
    out["cpu_ms"] = (cpu_seconds(*procs) - before) / max(out["n"], 1) * 1000
    return out


PROXY_ROWS = {"lean": "reverse proxy", "uvicorn": "proxy (uvicorn)"}


def bench_http(
    config: Path, seconds: float, concurrency: int, name: str, proxy_servers: list[str]
) -> dict[str, dict[str, float]]:
    me = [sys.executable, str(Path(__file__).resolve())]
    row = train(name)[1]
    out: dict[str, dict[str, float]] = {}
    direct_port = free_port()
    direct = start([*me, "--serve", "direct", str(direct_port), str(config), name], direct_port)
    try:
        out["direct"] = measure(direct_port, seconds, concurrency, row, direct)
        mw_port = free_port()
        mw = start([*me, "--serve", "middleware", str(mw_port), str(config), name], mw_port)
        try:
            out["ASGI middleware"] = measure(mw_port, seconds, concurrency, row, mw)
        finally:
            mw.terminate()
            mw.wait()
        for server in proxy_servers:
            px_port = free_port()
            px = start(
                [
                    sys.executable,
                    "-m",
                    "bastion",
                    "guard",
                    "serve",
                    "--config",
                    str(config),
                    "--upstream",
                    f"http://127.0.0.1:{direct_port}",
                    "--port",
                    str(px_port),
                    "--server",
                    server,
                ],
                px_port,
            )
            try:
                out[PROXY_ROWS[server]] = measure(px_port, seconds, concurrency, row, px, direct)
            finally:
                px.terminate()
                px.wait()
    finally:
        direct.terminate()
        direct.wait()
    return out


def table(title: str, rows: dict[str, dict[str, float]]) -> None:
    base = rows["direct"]
    print(f"\n{title}")
    print(
        f"{'path':<18}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>8}{'added p50':>11}"
        f"{'thr. ratio':>11}{'CPU ms/req':>11}{'added CPU':>10}"
    )
    for name, r in rows.items():
        print(
            f"{name:<18}{r['p50']:>9.3f}{r['p99']:>9.3f}{r['rps']:>8.0f}"
            f"{r['p50'] - base['p50']:>11.3f}{r['rps'] / base['rps']:>11.2f}"
            f"{r['cpu_ms']:>11.3f}{r['cpu_ms'] - base['cpu_ms']:>10.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument(
        "--models",
        default="iris-logreg,digits-mlp",
        help=f"comma-separated, from {', '.join(MODELS)}",
    )
    ap.add_argument(
        "--proxy-servers",
        default="lean",
        help="comma-separated front ends for the proxy rows: lean (guard serve's own), uvicorn",
    )
    ap.add_argument("--serve", nargs=4, metavar=("KIND", "PORT", "CONFIG", "MODEL"))
    args = ap.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2], args.serve[3])
        return
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    servers = [n.strip() for n in args.proxy_servers.split(",") if n.strip()]
    if not servers or set(servers) - set(PROXY_ROWS):
        raise SystemExit(f"--proxy-servers takes {', '.join(PROXY_ROWS)}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            _, row, high = train(name)
            sub = Path(tmp) / name
            sub.mkdir()
            config = write_config(sub, len(row), high)
            results[name] = (
                bench_inprocess(config, args.calls, name),
                bench_http(config, args.seconds, args.concurrency, name, servers),
            )
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; python "
        f"{sys.version.split()[0]}; full policy stack, memory store, audit log on"
    )
    print(
        "CPU ms/req: CPU time per request (in-process: this thread; HTTP: the server "
        "processes, proxy + model server for the proxy); less sensitive to other load"
    )
    for name, (inproc, http) in results.items():
        print(f"\n=== {name}: {MODELS[name]}")
        table(f"in-process, {args.calls} sequential calls, 1 row", inproc)
        table(
            f"HTTP on loopback, {args.concurrency} keep-alive connections, "
            f"{args.seconds:.0f} s each",
            http,
        )
        added = inproc["in-process guard"]["p50"] - inproc["direct"]["p50"]
        proxy_row = PROXY_ROWS[servers[0]]
        ratio = http[proxy_row]["rps"] / http["direct"]["rps"]
        print(
            f"target in-process added p50 <= 0.300 ms: {added:.3f} ms "
            f"{'MET' if added <= 0.3 else 'MISSED'}"
        )
        print(
            f"target proxy throughput >= 0.85x direct: {ratio:.2f}x "
            f"{'MET' if ratio >= 0.85 else 'MISSED'}"
        )
        for path, r in http.items():
            if r["non200"]:
                print(f"warning: {path} answered {int(r['non200'])} non-200 responses")


if __name__ == "__main__":
    main()
