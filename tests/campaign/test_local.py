"""The local executor: order, progress, and retries after real worker deaths and failures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bastion.campaign import LocalExecutor, TaskEvent, make_executor
from bastion.errors import TaskFailed, UsageError
from bastion.testing.tasks import FlakyTask, SquareTask, VictimTask

from .conftest import kill_when_written


def test_results_come_back_in_task_order_with_one_event_per_step() -> None:
    events: list[TaskEvent] = []
    out = LocalExecutor(2).map([SquareTask(n) for n in range(12)], progress=events.append)
    assert [v for v, _ in out] == [n * n for n in range(12)]
    assert {pid for _, pid in out} - {os.getpid()}, "work ran in worker processes"
    done = [e for e in events if e.kind == "done"]
    assert len(done) == 12 and sorted(e.index for e in done) == list(range(12))
    assert [e.done for e in done] == list(range(1, 13))
    assert all(e.total == 12 for e in events)


def test_a_task_whose_worker_is_killed_is_retried(tmp_path: Path) -> None:
    pid_file = tmp_path / "victim.pid"
    join = kill_when_written(pid_file)
    events: list[TaskEvent] = []
    tasks = [VictimTask(str(pid_file), value=41), *(SquareTask(n) for n in range(4))]
    out = LocalExecutor(2).map(tasks, progress=events.append)
    killed = join()
    assert killed > 0 and killed != os.getpid()
    assert out[0] == 41 and [v for v, _ in out[1:]] == [0, 1, 4, 9]
    retries = [e for e in events if e.kind == "retry"]
    assert any(e.key == "victim" and "worker died" in e.detail for e in retries)


def test_operational_failures_are_retried_and_then_reported(tmp_path: Path) -> None:
    ok = tmp_path / "ok"
    ok.mkdir()
    assert LocalExecutor(1).map([FlakyTask(str(ok), failures=2)], retries=2) == [
        "ok after 2 failures"
    ]
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(TaskFailed, match=r"flaky.*3 time") as caught:
        LocalExecutor(1).map([FlakyTask(str(bad), failures=5)], retries=2)
    assert caught.value.attempts == 3 and caught.value.exit_code == 3
    assert len(list(bad.glob("attempt-*"))) == 3


def test_a_usage_error_is_not_retried(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="wrong in itself"):
        LocalExecutor(1).map([FlakyTask(str(tmp_path), usage_error=True)], retries=3)


def test_executor_names_and_bad_settings_are_usage_errors() -> None:
    assert make_executor("local", workers=2).workers == 2
    with pytest.raises(UsageError, match="unknown executor"):
        make_executor("dask")
    with pytest.raises(UsageError, match="--address"):
        make_executor("local", address="ray://x:10001")
    with pytest.raises(UsageError, match="workers"):
        LocalExecutor(0)
