"""Fixtures for the detector tests: the two evaluation tasks and their fitted benign profiles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_limits

from bastion.detect.profile import Profile, fit_profile
from bastion.detect.streams import Task, load_task


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """The surrogate fits in the extraction tests are small; a multi-threaded BLAS spin-waiting
    on a shared 2-core runner makes each one 10-30x slower than on one thread."""
    before = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # and in the CLI subprocesses
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        if before is None:
            os.environ.pop("OPENBLAS_NUM_THREADS", None)
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = before


def _fitted(task: Task, factory: pytest.TempPathFactory) -> Path:
    """A benign profile fitted on the task's fit data, saved where the session keeps files."""
    path = factory.mktemp("profiles") / f"{task.name}.json"
    fit_profile(task.x_fit, shape=task.shape).save(path)
    return path


@pytest.fixture(scope="session")
def cancer() -> Task:
    return load_task("cancer")


@pytest.fixture(scope="session")
def digits() -> Task:
    return load_task("digits32")


@pytest.fixture(scope="session")
def rows8_task() -> Task:
    return load_task("rows8")


@pytest.fixture(scope="session")
def cancer_profile(cancer: Task, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fitted(cancer, tmp_path_factory)


@pytest.fixture(scope="session")
def digits_profile(digits: Task, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fitted(digits, tmp_path_factory)


@pytest.fixture(scope="session")
def rows8_profile(rows8_task: Task, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fitted(rows8_task, tmp_path_factory)


def load(path: Path) -> Profile:
    return Profile.load(path)


def rows_similarity(profile: Path) -> dict[str, Any]:
    """The similarity entry of the rows configuration the guard runs (boundary hugging weighs
    0.4, a flat swarm, the window of queries, a campaign moved to a fresh account at its
    first query in the old one's swarm)."""
    from bastion.detect.configurations import detectors

    return next(e for e in detectors("rows+extraction", profile) if e["kind"] == "similarity")
