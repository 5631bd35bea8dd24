"""The local executor: order, progress, and retries after real worker deaths and failures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bastion.attacks.base import AttackData
from bastion.attacks.campaign import run_campaign
from bastion.campaign import (
    LocalExecutor,
    ModelSpec,
    TaskEvent,
    chunk_seed,
    make_executor,
    run_attacks,
    scan_files,
    scan_tasks,
)
from bastion.errors import TaskFailed, UsageError
from bastion.scan import Scanner
from bastion.testing.servers import iris_model
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


def test_one_chunk_is_exactly_the_attack_engines_own_run(iris_data: AttackData) -> None:
    """A task runs the engine's attack unchanged; splitting only decides seeds and rows."""
    target = ModelSpec(iris_model)
    split = run_attacks(
        LocalExecutor(1), target, iris_data, ["hopskipjump-l2"], budget=25, seed=4, chunk_size=64
    )
    direct = run_campaign(
        target.open(), iris_data, ["hopskipjump-l2"], budget=25, seed=chunk_seed(4, 0)
    )
    a, b = split.results[0], direct.results[0]
    assert a.n == b.n == 24 and a.total_queries == b.total_queries
    for name in ("success", "queries", "spent", "adversarials"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.metrics["success_rate"] == b.metrics["success_rate"]


def test_merged_chunks_recompute_rates_over_all_points(iris_data: AttackData) -> None:
    run = run_attacks(
        LocalExecutor(2),
        ModelSpec(iris_model),
        iris_data,
        ["hopskipjump-l2"],
        budget=25,
        seed=4,
        chunk_size=5,
    )
    r = run.results[0]
    assert r.params["chunks"] == 5 and r.n == 24 and r.success is not None
    assert r.metrics["success_rate"] == float(np.mean(r.success))
    assert r.total_queries == int(np.sum(r.spent)) == run.queries
    assert r.series[0].sample_size == 24 and r.series[0].y[-1] == pytest.approx(
        float(np.mean(r.success & (r.queries <= 25)))
    )
    assert run.findings[0].evidence["sample_size"] == 24


def test_a_scan_job_split_per_file_matches_the_scanner(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(6.0))
    (tmp_path / "b.bin").write_bytes(b"\x80\x04K\x01.")  # a tiny pickle: read, never loaded
    tasks = scan_tasks([tmp_path])
    assert [t.key for t in tasks] == [str(tmp_path / "a.npy"), str(tmp_path / "b.bin")]
    mine = scan_files(LocalExecutor(2), [tmp_path])
    theirs = Scanner().scan_paths([tmp_path])
    assert [(s.path, s.sha256, s.verdict, s.formats) for s in mine] == [
        (s.path, s.sha256, s.verdict, s.formats) for s in theirs
    ]
