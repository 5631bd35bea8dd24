"""A resumable audit run: one JSON file per finished stage, written atomically.

A crash or Ctrl-C halfway keeps every stage that finished; `--resume` reloads
them and runs only the rest. Resuming is refused when the inputs changed (the
manifest's bytes or the audit options), because mixing stages from two
different systems would produce a report about neither.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bastion.errors import OperationalError, UsageError
from bastion.findings import Finding, Series

__all__ = ["RunDir", "StageResult"]


class StageResult(BaseModel):
    """What one stage of an audit produced, and what it cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str
    findings: tuple[Finding, ...] = ()
    series: tuple[Series, ...] = ()
    notes: tuple[str, ...] = ()
    data: dict[str, Any] = Field(default_factory=dict)
    elapsed_s: float = 0.0
    queries: int = 0


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    def __init__(self, path: Path, inputs: dict[str, Any]) -> None:
        self.path = path
        self.inputs = inputs
        self.key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()

    def _stage_file(self, name: str) -> Path:
        return self.path / "stages" / f"{name}.json"

    def start(self, resume: bool) -> list[str]:
        """Prepare the directory; return the names of stages already finished."""
        meta = self.path / "run.json"
        if resume:
            if not meta.exists():
                raise UsageError(
                    f"nothing to resume in {self.path}", hint="run once without --resume"
                )
            previous = json.loads(meta.read_text(encoding="utf-8"))
            if previous.get("key") != self.key:
                raise UsageError(
                    f"cannot resume {self.path}: the manifest or options changed since",
                    hint="start a fresh run with another --run-dir",
                )
            done = sorted(p.stem for p in (self.path / "stages").glob("*.json"))
            return done
        if (self.path / "stages").exists() and any((self.path / "stages").glob("*.json")):
            raise UsageError(
                f"{self.path} already holds an audit run",
                hint="pass --resume to continue it, or choose another --run-dir",
            )
        _atomic_write(meta, json.dumps({"key": self.key, "inputs": self.inputs}, indent=2))
        return []

    def save(self, result: StageResult) -> None:
        _atomic_write(self._stage_file(result.stage), result.model_dump_json(indent=2))

    def load(self, name: str) -> StageResult:
        path = self._stage_file(name)
        try:
            return StageResult.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError) as exc:
            raise OperationalError(
                f"stage result {path} is unreadable: {exc}",
                hint="delete that file and resume to re-run the stage",
            ) from None
