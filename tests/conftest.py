"""Shared fixtures: run the real CLI, as a user would, in a subprocess or in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python -m bastion ARGS` in a subprocess; returns the completed process."""

    def run(
        *args: str, cwd: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("COLUMNS", "200")
        return subprocess.run(
            [sys.executable, "-m", "bastion", *args],
            capture_output=True,
            text=True,
            cwd=cwd or ROOT,
            env=env,
            timeout=timeout,
            check=False,
        )

    return run
