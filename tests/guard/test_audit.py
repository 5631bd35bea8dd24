"""The audit chain: every way of tampering is detected, and `verify-log` says where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.guard.audit import AuditLog
from bastion.guard.verification import verify_log


def _log(path: Path, n: int = 6) -> list[bytes]:
    log = AuditLog(path)
    for i in range(n):
        log.write({"event": "decision", "principal": f"p{i % 2}", "decision": "allow"})
    log.close()
    return path.read_bytes().splitlines(keepends=True)


def test_intact_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    _log(path)
    v = verify_log([path])
    assert v.ok and v.records == 6 and v.last_seq == 6


def test_edited_record_is_found_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = _log(path)
    rec = json.loads(lines[2])
    rec["decision"] = "deny"
    lines[2] = (json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n").encode()
    path.write_bytes(b"".join(lines))
    v = verify_log([path])
    assert [(p.kind, p.line) for p in v.problems] == [("edited", 3)]


def test_deleted_record_is_found(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = _log(path)
    del lines[3]
    path.write_bytes(b"".join(lines))
    v = verify_log([path])
    assert [(p.kind, p.line) for p in v.problems] == [("deleted", 4)]
    assert "record(s) 4 missing" in v.problems[0].message


def test_inserted_record_is_found(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = _log(path)
    lines.insert(4, lines[1])  # a replayed copy of record 2
    path.write_bytes(b"".join(lines))
    v = verify_log([path])
    assert [(p.kind, p.line) for p in v.problems] == [("inserted", 5)]


def test_forged_text_line_is_found(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = _log(path)
    lines.insert(2, b'{"note": "all fine"}\n')
    path.write_bytes(b"".join(lines))
    v = verify_log([path])
    assert [(p.kind, p.line) for p in v.problems] == [("garbled", 3)]


def test_reordered_records_are_found(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = _log(path)
    lines[2], lines[3] = lines[3], lines[2]
    path.write_bytes(b"".join(lines))
    v = verify_log([path])
    assert {p.kind for p in v.problems} == {"reordered"}
    assert v.problems[0].line == 3


def test_torn_last_line_is_reported_then_acknowledged_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = _log(path)
    path.write_bytes(b"".join(lines) + lines[0][:40])  # a crash mid-write
    v = verify_log([path])
    assert [(p.kind, p.line) for p in v.problems] == [("torn", 7)]
    log = AuditLog(path)  # the guard restarts
    log.write({"event": "decision"})
    log.close()
    v = verify_log([path])
    assert v.ok, v.problems
    assert any("torn line" in n and ":7:" in n for n in v.notes)
    assert v.last_seq == 8


def test_restart_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    _log(path, 3)
    _log(path, 3)
    v = verify_log([path])
    assert v.ok and v.records == 6


def test_rotation_keeps_the_chain_across_segments(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    log = AuditLog(path, max_bytes=2048)
    for i in range(40):
        log.write({"event": "decision", "n": i, "pad": "x" * 40})
    segments = log.segments()
    log.close()
    assert len(segments) > 2
    v = verify_log(list(reversed(segments)))  # order is recovered from the records
    assert v.ok and v.records == 40
    v = verify_log([segments[0], segments[2]])  # a whole segment went missing
    assert [p.kind for p in v.problems] == ["deleted"]


@pytest.mark.parametrize("damage", ["edit", "none"])
def test_verify_log_cli_exit_codes(tmp_path: Path, run_cli, damage: str) -> None:
    path = tmp_path / "a.jsonl"
    lines = _log(path)
    if damage == "edit":
        lines[1] = lines[1].replace(b'"p1"', b'"px"')
        path.write_bytes(b"".join(lines))
    res = run_cli("guard", "verify-log", str(path))
    if damage == "edit":
        assert res.returncode == 1
        assert f"{path}:2: edited" in res.stdout
    else:
        assert res.returncode == 0, res.stderr
        assert "6 records, chain intact" in res.stderr


def test_verify_log_of_a_missing_file_is_a_usage_error(tmp_path: Path, run_cli) -> None:
    res = run_cli("guard", "verify-log", str(tmp_path / "nope.jsonl"))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
