"""A scan job cut into one task per file, so big model stores scan on many workers."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bastion.campaign.executor import Executor, Progress
from bastion.scan.scanner import FileScan, Scanner
from bastion.scan.source import ScanLimits

__all__ = ["ScanTask", "scan_files", "scan_tasks"]


@dataclass(frozen=True)
class ScanTask:
    """Scan one file; the file is read, never loaded."""

    path: str
    limits: ScanLimits | None = None

    @property
    def key(self) -> str:
        return self.path

    def __call__(self) -> FileScan:
        return Scanner(self.limits).scan_file(self.path)


def scan_tasks(
    paths: Iterable[str | os.PathLike[str]], limits: ScanLimits | None = None
) -> list[ScanTask]:
    """One task per file under `paths`, in the scanner's own (sorted) order."""
    return [ScanTask(str(p), limits) for p in Scanner.expand(paths)]


def scan_files(
    executor: Executor,
    paths: Sequence[str | os.PathLike[str]],
    *,
    limits: ScanLimits | None = None,
    progress: Progress | None = None,
    retries: int = 2,
) -> list[FileScan]:
    """What `Scanner().scan_paths(paths)` returns, computed on the executor's workers."""
    results: list[FileScan] = executor.map(
        scan_tasks(paths, limits), progress=progress, retries=retries
    )
    return results
