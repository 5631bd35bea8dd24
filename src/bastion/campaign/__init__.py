"""Campaigns at scale: independent tasks on local processes or on a Ray cluster.

`make_executor("local" | "ray")` gives an `Executor` whose `map(tasks)` returns
results in task order, streams a `TaskEvent` per step and retries a task whose
worker died. `attack_tasks`/`run_attacks` cut an attack run into tasks (per
attack × per chunk of points, seeded per chunk); `scan_tasks`/`scan_files` cut a
scan into one task per file; `run_campaign` audits many systems into one Report.
"""

from bastion.campaign.attacktasks import (
    AttackTask,
    EndpointSpec,
    ModelSpec,
    TargetSpec,
    attack_tasks,
    chunk_seed,
    merge_chunks,
    run_attacks,
)
from bastion.campaign.executor import (
    Executor,
    Failure,
    LocalExecutor,
    Progress,
    Task,
    TaskEvent,
    make_executor,
)
from bastion.campaign.scantasks import ScanTask, scan_files, scan_tasks

__all__ = [
    "AttackTask",
    "EndpointSpec",
    "Executor",
    "Failure",
    "LocalExecutor",
    "ModelSpec",
    "Progress",
    "ScanTask",
    "TargetSpec",
    "Task",
    "TaskEvent",
    "attack_tasks",
    "chunk_seed",
    "make_executor",
    "merge_chunks",
    "run_attacks",
    "scan_files",
    "scan_tasks",
]
