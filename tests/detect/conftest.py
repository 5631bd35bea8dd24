"""Fixtures for the detector tests: the two evaluation tasks and their fitted benign profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.detect.profile import Profile, fit_profile
from bastion.detect.streams import Task, load_task


@pytest.fixture(scope="session")
def cancer() -> Task:
    return load_task("cancer")


@pytest.fixture(scope="session")
def digits() -> Task:
    return load_task("digits32")


@pytest.fixture(scope="session")
def cancer_profile(cancer: Task, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profiles") / "cancer.json"
    fit_profile(cancer.x_fit, shape=cancer.shape).save(path)
    return path


@pytest.fixture(scope="session")
def digits_profile(digits: Task, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profiles") / "digits.json"
    fit_profile(digits.x_fit, shape=digits.shape).save(path)
    return path


def load(path: Path) -> Profile:
    return Profile.load(path)
