"""The ledger counts every input, never lets a budget be exceeded, paces, and retries 429/503."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from bastion.errors import BudgetExhausted, EndpointError, UsageError
from bastion.target import Ledger, OutputKind, QueryResult, SklearnTarget, Target, TargetInfo
from bastion.target.ledger import parse_rate


@pytest.fixture(scope="module")
def iris_target() -> SklearnTarget:
    x, y = load_iris(return_X_y=True)
    return SklearnTarget(LogisticRegression(max_iter=500).fit(x, y))


def test_ledger_is_a_target_and_counts_per_input(iris_target: SklearnTarget) -> None:
    ledger = Ledger(iris_target)
    assert isinstance(ledger, Target)
    x = np.zeros((7, 4))
    ledger.query(x)
    ledger.query(x[:1])
    stats = ledger.stats()
    assert (ledger.queries, stats.queries, stats.requests) == (8, 8, 2)
    assert stats.errors == 0 and stats.latency["max"] >= stats.latency["p50"] > 0
    assert ledger.info().n_classes == 3


def test_budget_stops_at_exactly_the_budget(iris_target: SklearnTarget) -> None:
    ledger = Ledger(iris_target, budget=10)
    for _ in range(10):
        ledger.query(np.zeros((1, 4)))
    assert ledger.queries == 10 and ledger.remaining == 0
    with pytest.raises(BudgetExhausted) as info:
        ledger.query(np.zeros((1, 4)))
    assert (info.value.spent, info.value.budget) == (10, 10)
    assert ledger.queries == 10


def test_batch_that_would_cross_the_budget_is_not_sent(iris_target: SklearnTarget) -> None:
    calls: list[int] = []

    def model(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        calls.append(len(x))
        return np.tile([0.2, 0.8], (len(x), 1))

    from bastion.target import CallableTarget

    ledger = Ledger(CallableTarget(model), budget=5)
    ledger.query(np.zeros((3, 2)))
    with pytest.raises(BudgetExhausted):
        ledger.query(np.zeros((3, 2)))
    assert calls == [3] and ledger.remaining == 2
    ledger.query(np.zeros((2, 2)))  # sized with .remaining, spends the budget exactly
    assert ledger.queries == 5 and calls == [3, 2]


class _Flaky:
    """Answers 429 (with Retry-After) `failures` times, then succeeds."""

    def __init__(self, failures: int, status: int = 429, retry_after: float | None = 1.5) -> None:
        self.failures = failures
        self.status = status
        self.retry_after = retry_after
        self.calls = 0

    def info(self) -> TargetInfo:
        return TargetInfo(name="flaky", output=OutputKind.LABEL)

    def close(self) -> None:
        return None

    def query(self, inputs: npt.NDArray[Any]) -> QueryResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise EndpointError("slow down", status=self.status, retry_after=self.retry_after)
        return QueryResult(labels=np.zeros(len(inputs), dtype=np.int64), scores=None, latency_s=0)


def test_retries_honour_retry_after_and_count_every_attempt() -> None:
    waits: list[float] = []
    target = _Flaky(failures=2)
    ledger = Ledger(target, retries=3, sleep=waits.append)
    ledger.query(np.zeros((4, 2)))
    stats = ledger.stats()
    assert waits == [1.5, 1.5]
    assert (stats.queries, stats.requests, stats.retries, stats.errors) == (12, 3, 2, 2)
    assert stats.statuses == {429: 2, 200: 1}


def test_backoff_without_retry_after_then_gives_up() -> None:
    waits: list[float] = []
    ledger = Ledger(
        _Flaky(9, status=503, retry_after=None), retries=2, backoff_s=0.25, sleep=waits.append
    )
    with pytest.raises(EndpointError):
        ledger.query(np.zeros((1, 2)))
    assert waits == [0.25, 0.5] and ledger.queries == 3


def test_retry_never_crosses_the_budget() -> None:
    ledger = Ledger(_Flaky(5), budget=2, sleep=lambda s: None)
    with pytest.raises(BudgetExhausted):
        ledger.query(np.zeros((1, 2)))
    assert ledger.queries == 2


def test_no_retry_on_client_errors() -> None:
    target = _Flaky(1, status=400)
    with pytest.raises(EndpointError):
        Ledger(target, sleep=lambda s: None).query(np.zeros((1, 2)))
    assert target.calls == 1


def test_pacing_spaces_requests() -> None:
    import time

    ledger = Ledger(_Flaky(0), pace="20/s")
    t0 = time.perf_counter()
    for _ in range(4):
        ledger.query(np.zeros((1, 2)))
    # The first request goes at once; the next three each wait about 1/20 s.
    assert 0.14 <= time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("100/minute", 100 / 60),
        ("5/s", 5.0),
        ("10 per 2 seconds", 5.0),
        ("3600/hour", 1.0),
        (2.5, 2.5),
    ],
)
def test_parse_rate(text: str | float, rate: float) -> None:
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("text", ["fast", "10/fortnight", "0/s"])
def test_parse_rate_rejects_nonsense(text: str) -> None:
    with pytest.raises(UsageError):
        parse_rate(text)
