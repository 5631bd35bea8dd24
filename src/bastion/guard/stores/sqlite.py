"""SQLite store: the embedded default, so quotas, reviews and detections survive a restart.

WAL mode lets several guard processes on one host share the file; every
write is one short transaction. The fixed-window counters used by `limits`
are a table updated with one atomic upsert per hit.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from limits.storage import Storage

from bastion.errors import StoreError
from bastion.guard.stores.base import (
    LogAppend,
    LogRead,
    LogSlice,
    PrincipalState,
    ReviewCase,
    resolved,
)

__all__ = ["SQLiteRateStorage", "SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, count INTEGER, expiry REAL);
CREATE TABLE IF NOT EXISTS cases (id TEXT PRIMARY KEY, created REAL, status TEXT, doc TEXT);
CREATE INDEX IF NOT EXISTS cases_status ON cases(status, created);
CREATE TABLE IF NOT EXISTS evidence (principal TEXT, detector TEXT, amount REAL,
    PRIMARY KEY (principal, detector));
CREATE TABLE IF NOT EXISTS actions (principal TEXT PRIMARY KEY, action TEXT, until REAL);
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, item BLOB);
CREATE INDEX IF NOT EXISTS history_key ON history(key, id);
CREATE TABLE IF NOT EXISTS logs (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, origin TEXT,
    item BLOB);
CREATE INDEX IF NOT EXISTS logs_key ON logs(key, seq);
CREATE TABLE IF NOT EXISTS log_sizes (key TEXT PRIMARY KEY, n INTEGER);
"""


class _Db:
    """One connection guarded by a lock; every sqlite3 failure becomes StoreError."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        self.path = path
        self.lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                str(path),
                timeout=max(timeout_s, 1.0),
                check_same_thread=False,
                isolation_level=None,
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open SQLite store {path}: {exc}") from None

    def run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            try:
                return self.conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path}: {exc}") from None

    def transaction(self, work: Callable[[sqlite3.Connection], None]) -> None:
        """Run several statements as one write transaction (one lock, one fsync)."""
        with self.lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    work(self.conn)
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path}: {exc}") from None


class SQLiteRateStorage(Storage):
    """Fixed-window counters for `limits`, persisted in the guard's SQLite file."""

    STORAGE_SCHEME: ClassVar[list[str]] = ["bastion-sqlite"]  # type: ignore[misc]

    def __init__(self, db: _Db) -> None:
        super().__init__(None, wrap_exceptions=False)
        self._db = db

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return StoreError

    def incr(self, key: str, expiry: int | float, amount: int = 1) -> int:
        now = time.time()
        rows = self._db.run(
            "INSERT INTO counters(key, count, expiry) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET "
            "count = CASE WHEN expiry <= ? THEN excluded.count ELSE count + excluded.count END, "
            "expiry = CASE WHEN expiry <= ? THEN excluded.expiry ELSE expiry END "
            "RETURNING count",
            (key, amount, now + expiry, now, now),
        )
        return int(rows[0][0])

    def get(self, key: str) -> int:
        rows = self._db.run(
            "SELECT count FROM counters WHERE key = ? AND expiry > ?", (key, time.time())
        )
        return int(rows[0][0]) if rows else 0

    def get_expiry(self, key: str) -> float:
        rows = self._db.run("SELECT expiry FROM counters WHERE key = ?", (key,))
        return float(rows[0][0]) if rows else time.time()

    def check(self) -> bool:
        try:
            self._db.run("SELECT 1")
        except StoreError:
            return False
        return True

    def reset(self) -> int | None:
        n = self._db.run("SELECT count(*) FROM counters")[0][0]
        self._db.run("DELETE FROM counters")
        return int(n)

    def clear(self, key: str) -> None:
        self._db.run("DELETE FROM counters WHERE key = ?", (key,))


class SQLiteStore:
    name = "sqlite"

    def __init__(self, path: Path | str, timeout_s: float = 0.5) -> None:
        self._db = _Db(Path(path), timeout_s)
        self._limits = SQLiteRateStorage(self._db)

    def rate_limit_storage(self) -> Storage:
        return self._limits

    def ping(self) -> None:
        self._db.run("SELECT 1")

    def put_case(self, case: ReviewCase) -> None:
        self._db.run(
            "INSERT OR REPLACE INTO cases(id, created, status, doc) VALUES (?, ?, ?, ?)",
            (case.id, case.created_at, case.status, case.to_json()),
        )

    def get_case(self, case_id: str) -> ReviewCase | None:
        rows = self._db.run("SELECT doc FROM cases WHERE id = ?", (case_id,))
        return ReviewCase.from_json(rows[0][0]) if rows else None

    def list_cases(self, status: str | None = None, limit: int = 100) -> list[ReviewCase]:
        if status is None:
            rows = self._db.run("SELECT doc FROM cases ORDER BY created LIMIT ?", (limit,))
        else:
            rows = self._db.run(
                "SELECT doc FROM cases WHERE status = ? ORDER BY created LIMIT ?", (status, limit)
            )
        return [ReviewCase.from_json(r[0]) for r in rows]

    def resolve_case(self, case_id: str, resolution: str, by: str) -> ReviewCase | None:
        case = self.get_case(case_id)
        if case is None:
            return None
        self.put_case(resolved(case, resolution, by))
        return case

    def add_evidence(self, principal: str, detector: str, amount: float) -> PrincipalState:
        self._db.run(
            "INSERT INTO evidence(principal, detector, amount) VALUES (?, ?, ?) "
            "ON CONFLICT(principal, detector) DO UPDATE SET amount = amount + excluded.amount",
            (principal, detector, amount),
        )
        return self.get_state(principal)

    def get_state(self, principal: str) -> PrincipalState:
        ev = self._db.run("SELECT detector, amount FROM evidence WHERE principal = ?", (principal,))
        act = self._db.run("SELECT action, until FROM actions WHERE principal = ?", (principal,))
        action, until = act[0] if act else (None, None)
        return PrincipalState({d: float(a) for d, a in ev}, action, until)

    def set_action(self, principal: str, action: str | None, until: float | None) -> None:
        self._db.run(
            "INSERT OR REPLACE INTO actions(principal, action, until) VALUES (?, ?, ?)",
            (principal, action, until),
        )

    def append_history(self, key: str, item: bytes, max_items: int) -> None:
        self._db.run("INSERT INTO history(key, item) VALUES (?, ?)", (key, item))
        self._db.run(
            "DELETE FROM history WHERE key = ? AND id <= "
            "(SELECT id FROM history WHERE key = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (key, key, max_items),
        )

    def read_history(self, key: str, limit: int | None = None) -> list[bytes]:
        rows = self._db.run(
            "SELECT item FROM history WHERE key = ? ORDER BY id DESC LIMIT ?", (key, limit or -1)
        )
        return [bytes(r[0]) for r in reversed(rows)]

    def append_logs(self, origin: str, appends: Sequence[LogAppend]) -> None:
        # AUTOINCREMENT never reuses a number and writers are serialised, so `seq` grows in
        # commit order: a reader that saw seq N has seen every entry numbered below N
        def work(conn: sqlite3.Connection) -> None:
            for a in appends:
                conn.executemany(
                    "INSERT INTO logs(key, origin, item) VALUES (?, ?, ?)",
                    [(a.key, origin, item) for item in a.items],
                )
                # a size per key makes trimming cost the rows removed, not the rows kept
                (n,) = conn.execute(
                    "INSERT INTO log_sizes(key, n) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                    "SET n = n + excluded.n RETURNING n",
                    (a.key, len(a.items)),
                ).fetchone()
                if n > a.max_items:
                    conn.execute(
                        "DELETE FROM logs WHERE seq IN "
                        "(SELECT seq FROM logs WHERE key = ? ORDER BY seq LIMIT ?)",
                        (a.key, n - a.max_items),
                    )
                    conn.execute("UPDATE log_sizes SET n = ? WHERE key = ?", (a.max_items, a.key))

        self._db.transaction(work)

    def read_logs(
        self, origin: str, reads: Sequence[LogRead], then_append: Sequence[LogAppend] = ()
    ) -> list[LogSlice]:
        out = []
        for r in reads:
            rows = self._db.run(
                "SELECT seq, origin, item FROM logs WHERE key = ? AND seq > ? "
                "ORDER BY seq DESC LIMIT ?",
                (r.key, r.cursor, r.limit),
            )
            cursor = int(rows[0][0]) if rows else r.cursor
            items = [bytes(it) for _, who, it in reversed(rows) if r.own or who != origin]
            out.append(LogSlice(items, cursor))
        if then_append:
            self.append_logs(origin, then_append)
        return out

    def close(self) -> None:
        with self._db.lock:
            self._db.conn.close()
