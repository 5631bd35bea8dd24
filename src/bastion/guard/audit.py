"""The tamper-evident audit log: append-only JSON lines, each chained to the one before.

Every record carries `seq`, `prev` (the previous record's hash) and `hash`
(SHA-256 of the record's canonical JSON without `hash`). Editing a record
breaks its hash; deleting, inserting or reordering records breaks the
sequence and the links. Rotation starts a new file whose first record links to
the last record of the old one, so the chain runs across segments. On start
the log continues the chain from the last intact record and, if the previous
process died mid-write, records that it found a torn line.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from bastion.errors import OperationalError

__all__ = ["GENESIS", "AuditLog", "canonical", "record_hash"]

GENESIS = "0" * 64


# the canonical form: sorted keys, no spaces, UTF-8; one encoder object for every record
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(record: dict[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k != "hash"} if "hash" in record else record
    return _CANONICAL.encode(body).encode()


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


class AuditLog:
    """One writer per file; give each guard replica its own file."""

    def __init__(self, path: Path | str, *, max_bytes: int = 64 << 20, fsync: bool = False):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self.seq = 0
        self.head = GENESIS
        self.first_seq = 1
        recovered = self._resume()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._open()
        except OSError as exc:
            raise OperationalError(
                f"cannot open audit log {self.path}: {exc.strerror}",
                hint="check that the directory exists and is writable",
            ) from None
        if recovered is not None:
            self.write({"event": "recovery", **recovered})

    def _resume(self) -> dict[str, Any] | None:
        """Continue the chain after the last intact record; report a torn final line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        torn: dict[str, Any] | None = None
        if not data.endswith(b"\n"):
            torn = {"torn_line": len(lines), "torn_bytes": len(lines[-1])}
            with self.path.open("ab") as f:
                f.write(b"\n")
        complete = [ln for ln in lines[:-1] if ln.strip()]
        for raw in reversed(complete):
            try:
                last = json.loads(raw)
                self.seq, self.head = int(last["seq"]), str(last["hash"])
                break
            except (ValueError, KeyError, TypeError):
                continue
        try:
            self.first_seq = int(json.loads(complete[0])["seq"]) if complete else self.seq + 1
        except (ValueError, KeyError, TypeError):
            self.first_seq = 1
        return torn

    def write(self, fields: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            record: dict[str, Any] = {
                "seq": self.seq + 1,
                "ts": round(time.time(), 6),
                "prev": self.head,
                **fields,
            }
            body = canonical(record)
            digest = hashlib.sha256(body).hexdigest()
            # the canonical form plus the hash as the last key: one serialisation per record
            line = b'%s,"hash":"%s"}\n' % (body[:-1], digest.encode())
            record["hash"] = digest
            if self._size + len(line) > self.max_bytes and self._size > 0:
                self._rotate()
            # unbuffered: one write(2) per record, so a crash right after loses nothing
            done = self._file.write(line) or 0
            while done < len(line):  # a short write (signal, nearly full disk): finish it
                done += self._file.write(line[done:]) or 0
            self._size += done
            if self.fsync:
                os.fsync(self._file.fileno())
            self.seq, self.head = record["seq"], record["hash"]
            return record

    def _rotate(self) -> None:
        """Close the segment as `<path>.<first seq>`; the next record still links to its head."""
        self._file.close()
        self.path.rename(self.path.with_name(f"{self.path.name}.{self.first_seq:012d}"))
        self.first_seq = self.seq + 1
        self._file = self._open()

    def _open(self) -> io.FileIO:
        f = io.FileIO(self.path, "a")
        self._size = os.fstat(f.fileno()).st_size
        return f

    def segments(self) -> list[Path]:
        """Every segment of this log, oldest first (rotated ones, then the live file)."""
        rotated = sorted(self.path.parent.glob(self.path.name + ".*"))
        return [*rotated, self.path]

    def close(self) -> None:
        with self._lock:
            self._file.close()
