"""The query ledger: the only door through which attacks and probes reach a target.

An attack's cost is the number of inputs the deployed system had to answer, so
the ledger counts every input sent (per input, not per request, including
inputs in requests that failed or were retried), checks the budget *before*
sending so it can never be exceeded, paces requests to stay under a rate limit,
and retries 429/503 answers honouring `Retry-After`. Its counts are what the
server's own log shows, which a test checks.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import BudgetExhausted, EndpointError, TargetError, UsageError
from bastion.target.base import QueryResult, Target, TargetInfo

__all__ = ["Ledger", "LedgerStats", "parse_rate"]

_RETRYABLE = frozenset({429, 503})
_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_UNITS |= {"h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/|per)\s*(\d+(?:\.\d+)?)?\s*([a-z]+?)s?\s*$")


def parse_rate(text: str | float) -> float:
    """`"100/minute"`, `"5/s"`, `"10 per 2 seconds"` or a number → requests per second."""
    if isinstance(text, int | float):
        rate = float(text)
    else:
        match = _RATE.match(text.lower())
        if match is None or match.group(3) not in _UNITS:
            raise UsageError(
                f"cannot read rate {text!r}", hint="write it like '100/minute', '5/s' or '2.5'"
            )
        count, span, unit = match.groups()
        rate = float(count) / (float(span or 1) * _UNITS[unit])
    if rate <= 0:
        raise UsageError(f"rate must be positive, got {text!r}")
    return rate


@dataclass(frozen=True)
class LedgerStats:
    """A snapshot of what has been spent; latencies are per request, in seconds."""

    queries: int
    requests: int
    errors: int
    retries: int
    budget: int | None
    bytes_sent: int
    bytes_received: int
    elapsed_s: float
    latency: dict[str, float] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries

    def as_evidence(self) -> dict[str, Any]:
        """JSON-ready, for a Finding's evidence."""
        return {
            "queries": self.queries,
            "requests": self.requests,
            "errors": self.errors,
            "retries": self.retries,
            "budget": self.budget,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "elapsed_s": round(self.elapsed_s, 4),
            "latency_s": {k: round(v, 6) for k, v in self.latency.items()},
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


class Ledger:
    """Wraps any Target; itself a Target, plus `.queries`, `.remaining` and `.stats()`.

    `budget` caps the number of inputs ever sent: a batch that would cross it
    raises `BudgetExhausted` before anything is sent (size the last batch with
    `.remaining` to spend the budget exactly). `pace` (requests per second, or a
    rate string like "100/minute") spaces requests. Retries on 429/503 wait for
    `Retry-After` (capped at `max_wait_s`) or back off exponentially, and each
    retry counts against the budget like any other request the server sees.
    """

    def __init__(
        self,
        target: Target,
        budget: int | None = None,
        pace: float | str | None = None,
        *,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_wait_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if budget is not None and budget < 0:
            raise UsageError(f"budget must be >= 0, got {budget}")
        self.target = target
        self.budget = budget
        self.interval_s = 0.0 if pace is None else 1.0 / parse_rate(pace)
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        self._lock = threading.Lock()
        self._pace_lock = threading.Lock()
        self._next_send = 0.0
        self._queries = 0
        self._requests = 0
        self._errors = 0
        self._retries = 0
        self._bytes_sent = 0
        self._bytes_received = 0
        self._latencies: list[float] = []
        self._statuses: Counter[int] = Counter()
        self._started = time.perf_counter()

    # -- the Target protocol -------------------------------------------------
    def info(self) -> TargetInfo:
        return self.target.info()

    def close(self) -> None:
        self.target.close()

    def query(self, inputs: npt.NDArray[Any]) -> QueryResult:
        batch = np.asarray(inputs)
        n = int(batch.shape[0]) if batch.ndim > 0 else 1
        attempt = 0
        while True:
            self._reserve(n)
            self._wait_for_pace()
            t0 = time.perf_counter()
            try:
                result = self.target.query(batch)
            except EndpointError as exc:
                self._record_failure(time.perf_counter() - t0, exc.status)
                if exc.status not in _RETRYABLE or attempt >= self.retries:
                    raise
                attempt += 1
                with self._lock:
                    self._retries += 1
                self._sleep(self._retry_wait(attempt, exc.retry_after))
                continue
            except TargetError:
                self._record_failure(time.perf_counter() - t0, None)
                raise
            self._record(result, time.perf_counter() - t0)
            return result

    # -- accounting ------------------------------------------------------------
    @property
    def queries(self) -> int:
        return self._queries

    @property
    def remaining(self) -> int | None:
        with self._lock:
            return None if self.budget is None else self.budget - self._queries

    def stats(self) -> LedgerStats:
        with self._lock:
            lat = np.asarray(self._latencies, dtype=np.float64)
            latency: dict[str, float] = {}
            if lat.size:
                latency = {
                    "mean": float(lat.mean()),
                    "p50": float(np.percentile(lat, 50)),
                    "p95": float(np.percentile(lat, 95)),
                    "p99": float(np.percentile(lat, 99)),
                    "max": float(lat.max()),
                }
            return LedgerStats(
                queries=self._queries,
                requests=self._requests,
                errors=self._errors,
                retries=self._retries,
                budget=self.budget,
                bytes_sent=self._bytes_sent,
                bytes_received=self._bytes_received,
                elapsed_s=time.perf_counter() - self._started,
                latency=latency,
                statuses=dict(self._statuses),
            )

    def _reserve(self, n: int) -> None:
        # Counted before sending, under the lock, so concurrent callers can never
        # jointly overshoot the budget.
        with self._lock:
            if self.budget is not None and self._queries + n > self.budget:
                raise BudgetExhausted(
                    f"query budget spent: {self._queries} of {self.budget} inputs used, "
                    f"a batch of {n} would exceed it",
                    spent=self._queries,
                    budget=self.budget,
                )
            self._queries += n
            self._requests += 1

    def _wait_for_pace(self) -> None:
        if self.interval_s <= 0:
            return
        with self._pace_lock:
            now = time.monotonic()
            wait = self._next_send - now
            self._next_send = max(now, self._next_send) + self.interval_s
        if wait > 0:
            self._sleep(wait)

    def _retry_wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_wait_s)
        return min(self.backoff_s * float(2 ** (attempt - 1)), self.max_wait_s)

    def _record(self, result: QueryResult, latency_s: float) -> None:
        with self._lock:
            self._latencies.append(latency_s)
            self._statuses[result.status] += 1
            self._bytes_sent += result.bytes_sent
            self._bytes_received += result.bytes_received

    def _record_failure(self, latency_s: float, status: int | None) -> None:
        with self._lock:
            self._errors += 1
            self._latencies.append(latency_s)
            if status is not None:
                self._statuses[status] += 1
