"""Checking an audit log's chain: which records were edited, deleted, inserted or reordered.

The check reads every segment given (oldest first, or sorted by their first
sequence number) and reports each anomaly with the file and line where it
shows. A torn final line (a crash mid-write) is reported too; once a
restarted guard has acknowledged it with a `recovery` record it is a note,
not a failure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.errors import UsageError
from bastion.guard.audit import GENESIS, record_hash

__all__ = ["LogProblem", "LogVerdict", "verify_log"]


@dataclass(frozen=True)
class LogProblem:
    kind: str  # edited | deleted | inserted | reordered | torn | broken-link | garbled
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.message}"


@dataclass
class LogVerdict:
    records: int = 0
    problems: list[LogProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    head: str = GENESIS
    first_seq: int | None = None
    last_seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Entry:
    path: str
    line: int
    rec: dict[str, Any] | None
    raw: bytes
    last: bool


def _read(paths: list[Path]) -> list[_Entry]:
    entries: list[_Entry] = []
    for p in paths:
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {p}: {exc.strerror}", hint="check the path") from None
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for i, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                if not isinstance(rec, dict):
                    rec = None
            except ValueError:
                rec = None
            entries.append(_Entry(str(p), i, rec, raw, p == paths[-1] and i == len(lines)))
    return entries


def _order(paths: list[Path]) -> list[Path]:
    def first_seq(p: Path) -> int:
        try:
            with p.open("rb") as f:
                return int(json.loads(f.readline())["seq"])
        except (OSError, ValueError, KeyError, TypeError):
            return 1 << 62

    return sorted(paths, key=first_seq)


def verify_log(paths: list[Path]) -> LogVerdict:
    """Check the chain across the given segments; never raises on tampering, reports it."""
    entries = _read(_order(paths))
    verdict = LogVerdict()
    seqs = [int(e.rec["seq"]) for e in entries if e.rec and isinstance(e.rec.get("seq"), int)]
    later: dict[int, int] = {}
    for s in seqs:
        later[s] = later.get(s, 0) + 1
    seen: dict[int, int] = {}
    expected: int | None = None
    head: str | None = None
    hashes: dict[int, str] = {}
    torn_lines: dict[tuple[str, int], _Entry] = {}

    def problem(e: _Entry, kind: str, msg: str) -> None:
        verdict.problems.append(LogProblem(kind, e.path, e.line, msg))

    for e in entries:
        rec = e.rec
        if rec is None or not isinstance(rec.get("seq"), int) or "hash" not in rec:
            torn_lines[(e.path, e.line)] = e
            if e.last:
                problem(
                    e,
                    "torn",
                    f"final line is incomplete ({len(e.raw)} bytes): a crash "
                    "mid-write, or a truncated file",
                )
            continue
        seq = int(rec["seq"])
        later[seq] -= 1
        verdict.records += 1
        if rec.get("event") == "recovery" and isinstance(rec.get("torn_line"), int):
            key = (e.path, int(rec["torn_line"]))
            if key in torn_lines:
                torn_lines.pop(key)
                verdict.notes.append(
                    f"{e.path}:{rec['torn_line']}: torn line left by a crash, acknowledged by "
                    f"the recovery record at line {e.line}"
                )
        if expected is None:
            expected, head = seq, str(rec.get("prev"))
            hashes[seq - 1] = head
            verdict.first_seq = seq
            if seq != 1:
                verdict.notes.append(
                    f"{e.path}:{e.line}: chain starts at record {seq} (earlier segments not given)"
                )
            elif rec.get("prev") != GENESIS:
                problem(e, "broken-link", "the first record does not start the chain")
        if record_hash(rec) != rec["hash"]:
            problem(e, "edited", f"record {seq}'s content does not match its hash")
        elif seq in seen:
            problem(e, "inserted", f"record {seq} appears twice (lines {seen[seq]} and {e.line})")
            continue
        elif seq > expected:
            missing = [s for s in range(expected, seq) if s not in seen]
            if all(later.get(s, 0) > 0 for s in missing):
                problem(e, "reordered", f"record {seq} comes before record {expected}")
            else:
                gone = [s for s in missing if later.get(s, 0) <= 0]
                span = f"{gone[0]}" if len(gone) == 1 else f"{gone[0]}–{gone[-1]}"
                problem(e, "deleted", f"record(s) {span} missing before record {seq}")
        elif seq < expected:
            problem(e, "reordered", f"record {seq} comes after record {expected - 1}")
        elif seq - 1 in hashes and rec.get("prev") != hashes[seq - 1]:
            problem(e, "broken-link", f"record {seq} does not link to the record before it")
        seen[seq] = e.line
        expected = max(expected, seq + 1)
        head = str(rec["hash"])
        hashes[seq] = head
        verdict.last_seq = seq
        verdict.head = head
    for e in torn_lines.values():
        if not e.last:
            problem(e, "garbled", "line is not an audit record (inserted text or damage)")
    return verdict
