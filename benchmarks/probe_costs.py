"""What probing costs and what the ledger adds, measured on loopback servers.

Run: PYTHONPATH=src python benchmarks/probe_costs.py

Prints, per probe and server (OIP/JSON × vulnerable/hardened), the requests it
sent next to its bound, its wall time and the rules it raised; then the query
rate through a bare HTTP target next to the same target behind the Ledger,
and the ratio (the ledger's overhead).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bastion.probes import Endpoint, load_probes, probe_endpoint
from bastion.target import HttpOptions, Ledger
from bastion.target.remote import json_target
from bastion.testing import ServerConfig, iris_model, model_app, serve_in_background


def _endpoint(url: str, config: ServerConfig) -> Endpoint:
    return Endpoint(
        url=url if config.protocol == "oip" else url + "/predict",
        protocol=config.protocol,
        model_name="iris" if config.protocol == "oip" else None,
        options=HttpOptions(api_key=config.api_key),
        input_shape=(4,),
        bounds=(0.0, 8.0),
    )


def _timer(timings: dict[str, float]) -> Any:
    """A progress callback that records each probe's wall time."""
    last: list[Any] = [time.perf_counter(), ""]

    def tick(name: str, index: int, total: int) -> None:
        now = time.perf_counter()
        if last[1]:
            timings[last[1]] = now - last[0]
        last[0], last[1] = now, name

    return tick


def probe_table(model: Any) -> None:
    bounds = {p.name: p.max_requests for p in load_probes()}
    print(f"{'server':<16} {'probe':<12} {'requests':>8} {'bound':>6} {'time s':>7}  rules")
    for protocol in ("oip", "json"):
        for kind in ("vulnerable", "hardened"):
            config = getattr(ServerConfig, kind)(protocol)
            app = model_app(model, config)
            with serve_in_background(app) as url:
                timings: dict[str, float] = {}
                tick = _timer(timings)
                t0 = time.perf_counter()
                run = probe_endpoint(_endpoint(url, config), progress=tick)
                total = time.perf_counter() - t0
                server_count = app.state.bastion.requests
            for name, used in run.requests.items():
                rules = sorted({f.rule_id for f in run.findings if f.evidence["probe"] == name})
                print(
                    f"{protocol + '/' + kind:<16} {name:<12} {used:>8} {bounds[name]:>6} "
                    f"{timings.get(name, 0):>7.2f}  {','.join(rules) or '-'}"
                )
            sent = sum(run.requests.values())
            print(
                f"{protocol + '/' + kind:<16} {'TOTAL':<12} {sent:>8} {sum(bounds.values()):>6} "
                f"{total:>7.2f}  server counted {server_count} (ledger/probes {sent}, "
                f"ratio {server_count / sent:.3f})\n"
            )


def ledger_overhead(model: Any, n: int = 300) -> None:
    config = ServerConfig.vulnerable("json")
    x = np.random.default_rng(0).uniform(0, 8, size=(1, 4))
    with serve_in_background(model_app(model, config)) as url:
        bare = json_target(url + "/predict")
        wrapped = Ledger(json_target(url + "/predict"))
        for target in (bare, wrapped):  # warm up connections
            target.query(x)
        samples: dict[str, list[float]] = {"bare target": [], "through Ledger": []}
        for _ in range(5):  # interleaved rounds, so machine load hits both alike
            for name, target in (("bare target", bare), ("through Ledger", wrapped)):
                t0 = time.perf_counter()
                for _ in range(n // 5):
                    target.query(x)
                samples[name].append((n // 5) / (time.perf_counter() - t0))
        rates = {name: float(np.median(v)) for name, v in samples.items()}
        bare.close()
        wrapped.close()
    print(f"{'path':<16} {'queries/s':>10}   (median of 5 interleaved rounds of {n // 5})")
    for name, rate in rates.items():
        print(f"{name:<16} {rate:>10.0f}")
    print(f"ledger / bare ratio: {rates['through Ledger'] / rates['bare target']:.3f}")
    stats = wrapped.stats()
    print(
        f"ledger latency p50 {stats.latency['p50'] * 1e3:.2f} ms, p95 "
        f"{stats.latency['p95'] * 1e3:.2f} ms, queries {stats.queries}"
    )


def ledger_local(n: int = 20_000) -> None:
    """The ledger's own cost per query, where the model answers in microseconds."""
    from bastion.target import CallableTarget

    answer = np.array([[0.2, 0.8]])
    target = CallableTarget(lambda x: answer, name="constant")
    ledger = Ledger(target)
    x = np.zeros((1, 2))
    costs = {}
    for name, t in (("bare callable", target), ("callable via Ledger", ledger)):
        t0 = time.perf_counter()
        for _ in range(n):
            t.query(x)
        costs[name] = (time.perf_counter() - t0) / n * 1e6
    for name, us in costs.items():
        print(f"{name:<20} {us:>8.1f} µs/query (n={n})")
    print(f"ledger overhead: {costs['callable via Ledger'] - costs['bare callable']:.1f} µs/query")


if __name__ == "__main__":
    iris = iris_model()
    probe_table(iris)
    ledger_overhead(iris)
    ledger_local()
