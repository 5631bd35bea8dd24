"""The Ray executor on a local Ray: same results as local, retry after a real worker kill."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from bastion.attacks.base import AttackData
from bastion.campaign import LocalExecutor, ModelSpec, TaskEvent, run_attacks, scan_files
from bastion.campaign.rayexec import RayExecutor
from bastion.scan import Scanner
from bastion.testing.servers import iris_model
from bastion.testing.tasks import SquareTask, VictimTask

from .conftest import kill_when_written

ATTACKS = ["hopskipjump-l2", "extraction-random"]


def test_ray_streams_progress_and_keeps_task_order(ray_session: Any) -> None:
    events: list[TaskEvent] = []
    ex = RayExecutor()
    assert ex.workers == 2
    out = ex.map([SquareTask(n) for n in range(8)], progress=events.append)
    assert [v for v, _ in out] == [n * n for n in range(8)]
    assert {pid for _, pid in out} - {os.getpid()}
    assert [e.done for e in events if e.kind == "done"] == list(range(1, 9))
    ex.close()
    assert ray_session.is_initialized(), "the executor leaves a Ray it did not start alone"


def test_ray_retries_a_task_whose_worker_was_killed(ray_session: Any, tmp_path: Path) -> None:
    pid_file = tmp_path / "victim.pid"
    join = kill_when_written(pid_file)
    events: list[TaskEvent] = []
    out = RayExecutor().map(
        [VictimTask(str(pid_file), value=5), SquareTask(3)], progress=events.append
    )
    assert join() > 0
    assert out[0] == 5 and out[1][0] == 9
    assert [e.key for e in events if e.kind == "retry"] == ["victim"]


def _fingerprint(run: Any) -> list[Any]:
    rows = []
    for r in run.results:
        arrays = [r.success, r.queries, r.spent, r.l2, r.adversarials]
        rows.append(
            (
                r.attack,
                r.n,
                r.total_queries,
                sorted(r.metrics.items()),
                [None if a is None else np.asarray(a).tobytes() for a in arrays],
            )
        )
    return rows


def test_an_attack_run_gives_identical_results_on_ray_and_local(
    ray_session: Any, iris_data: AttackData
) -> None:
    target = ModelSpec(iris_model)
    kw: dict[str, Any] = {"budget": 30, "seed": 11, "chunk_size": 8}
    events: list[TaskEvent] = []
    on_ray = run_attacks(RayExecutor(), target, iris_data, ATTACKS, progress=events.append, **kw)
    local_2 = run_attacks(LocalExecutor(2), target, iris_data, ATTACKS, **kw)
    local_1 = run_attacks(LocalExecutor(1), target, iris_data, ATTACKS, **kw)
    assert _fingerprint(on_ray) == _fingerprint(local_2) == _fingerprint(local_1)
    assert [f.fingerprint for f in on_ray.findings] == [f.fingerprint for f in local_2.findings]
    evasion = on_ray.results[0]
    assert evasion.n == 24 and evasion.params["chunks"] == 3
    assert 0.0 < evasion.metrics["success_rate"] <= 1.0
    # 3 evasion chunks, one extraction task
    assert len([e for e in events if e.kind == "done"]) == 4
    other_seed = run_attacks(LocalExecutor(2), target, iris_data, ATTACKS, **{**kw, "seed": 12})
    assert _fingerprint(other_seed) != _fingerprint(local_2), "the seed matters"


def test_a_scan_job_runs_per_file_on_ray(ray_session: Any, tmp_path: Path) -> None:
    np.save(tmp_path / "weights.npy", np.arange(12.0))
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "more.npy", np.ones((2, 2)))
    direct = Scanner().scan_paths([tmp_path])
    on_ray = scan_files(RayExecutor(), [tmp_path])
    local = scan_files(LocalExecutor(2), [tmp_path])
    assert [(s.path, s.sha256, s.verdict, s.formats) for s in on_ray] == [
        (s.path, s.sha256, s.verdict, s.formats) for s in direct
    ]
    assert [s.path for s in local] == [s.path for s in direct]


def test_a_campaign_over_systems_is_the_same_on_ray(ray_session: Any) -> None:
    from bastion.campaign.systems import run_campaign

    root = Path(__file__).resolve().parents[2] / "examples"
    manifests = sorted(root.glob("*/system.yaml"))
    on_ray = run_campaign(manifests, RayExecutor(), probe=False)
    local = run_campaign(manifests, LocalExecutor(2), probe=False)
    assert [f.fingerprint for f in on_ray.findings] == [f.fingerprint for f in local.findings]

    # the per-system rows agree except for the seconds each system took
    def rows(report: Any) -> list[list[str]]:
        return [n.split()[:-2] for n in report.run.notes[1 : 1 + len(manifests)]]

    assert rows(on_ray) == rows(local) and len(rows(local)) == len(manifests)
