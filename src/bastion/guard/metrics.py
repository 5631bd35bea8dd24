"""Prometheus metrics on the default registry, with labels drawn from small fixed sets.

No principal, request id or input ever becomes a label: an attacker sending
many distinct keys must not be able to grow the metrics without bound.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["DECISIONS", "DETECTIONS", "LATENCY", "STORE_ERRORS", "UPSTREAM_ERRORS"]

DECISIONS = Counter(
    "bastion_guard_requests_total",
    "Requests decided by the guard, by decision and the policy that decided.",
    ["decision", "policy", "reason"],
)
LATENCY = Histogram(
    "bastion_guard_overhead_seconds",
    "Time spent in guard policies (excluding the model call).",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
)
DETECTIONS = Counter(
    "bastion_guard_detections_total",
    "Detector evidence events, by detector and the action taken.",
    ["detector", "action"],
)
STORE_ERRORS = Counter(
    "bastion_guard_store_errors_total",
    "State store failures met by a policy, by policy and failure mode.",
    ["policy", "mode"],
)
UPSTREAM_ERRORS = Counter(
    "bastion_guard_upstream_errors_total",
    "Model server failures seen by the proxy, by kind.",
    ["kind"],
)
