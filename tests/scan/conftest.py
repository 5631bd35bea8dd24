"""Scan-test fixtures: the CLI in-process, with a JSON reporter until the real ones land."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pickle_asm import Asm

from bastion.errors import PluginError
from bastion.registry import registry


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run `bastion ARGS` in-process; returns (exit code, stdout, stderr)."""
    reporters = registry("reporters")
    try:
        reporters.get("json")
    except PluginError:
        reporters.register("json", lambda report: report.to_json())

    def run(*args: str) -> tuple[int, str, str]:
        from bastion.cli import main

        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def evil_pickle(tmp_path: Path) -> bytes:
    return Asm(2).call("os", "system", f"touch {tmp_path / 'PWNED'}").stop()


def findings(stdout: str) -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads(stdout)
    result: list[dict[str, Any]] = data["findings"]
    return result
