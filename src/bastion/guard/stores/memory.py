"""In-memory store: for tests, the in-process wrapper and single-process demos (no restart)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import ClassVar

from limits.storage import Storage

from bastion.guard.stores.base import (
    LogAppend,
    LogRead,
    LogSlice,
    PrincipalState,
    ReviewCase,
    resolved,
)

__all__ = ["MemoryRateStorage", "MemoryStore"]


class MemoryRateStorage(Storage):
    """Fixed-window counters in a dict, expired lazily.

    `limits`' own MemoryStorage starts timer threads to expire keys, which
    costs more than the rest of the guard's request path; the guard only needs
    fixed windows, which a lock and a dict give in microseconds.
    """

    STORAGE_SCHEME: ClassVar[list[str]] = ["bastion-memory"]  # type: ignore[misc]

    def __init__(self) -> None:
        super().__init__(None, wrap_exceptions=False)
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return RuntimeError

    def incr(self, key: str, expiry: int | float, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            count, until = self._counts.get(key, (0, 0.0))
            if until <= now:
                count, until = 0, now + expiry
            count += amount
            self._counts[key] = (count, until)
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            return count

    def take(
        self, windows: Sequence[tuple[str, int, int]], cost: int
    ) -> int | list[tuple[int, float]]:
        """Count `cost` in every (key, limit, expiry) window if it fits them all.

        Returns (count, expiry time) per window once counted, or the index of the
        first window it does not fit (nothing counted). One lock, one pass: the
        quota policy's check-then-count in a single call, with no race in between.
        """
        now = time.time()
        with self._lock:
            after: list[tuple[str, int, float]] = []
            for i, (key, limit, expiry) in enumerate(windows):
                count, until = self._counts.get(key, (0, 0.0))
                if until <= now:
                    count, until = 0, now + expiry
                if count + cost > limit:
                    return i
                after.append((key, count + cost, until))
            for key, count, until in after:
                self._counts[key] = (count, until)
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            return [(count, until) for _, count, until in after]

    def get(self, key: str) -> int:
        count, until = self._counts.get(key, (0, 0.0))
        return count if until > time.time() else 0

    def get_expiry(self, key: str) -> float:
        return self._counts.get(key, (0, time.time()))[1]

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._lock:
            n = len(self._counts)
            self._counts.clear()
        return n

    def clear(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)


class MemoryStore:
    name = "memory"

    def __init__(self) -> None:
        self._limits = MemoryRateStorage()
        self._cases: dict[str, ReviewCase] = {}
        self._states: dict[str, PrincipalState] = {}
        self._history: dict[str, deque[bytes]] = {}
        self._logs: dict[str, tuple[deque[tuple[int, str, bytes]], int]] = {}
        self._lock = threading.Lock()

    def rate_limit_storage(self) -> Storage:
        return self._limits

    def ping(self) -> None:
        return None

    def put_case(self, case: ReviewCase) -> None:
        with self._lock:
            self._cases[case.id] = ReviewCase.from_json(case.to_json())

    def get_case(self, case_id: str) -> ReviewCase | None:
        case = self._cases.get(case_id)
        return ReviewCase.from_json(case.to_json()) if case else None

    def list_cases(self, status: str | None = None, limit: int = 100) -> list[ReviewCase]:
        cases = sorted(self._cases.values(), key=lambda c: c.created_at)
        return [c for c in cases if status is None or c.status == status][:limit]

    def resolve_case(self, case_id: str, resolution: str, by: str) -> ReviewCase | None:
        with self._lock:
            case = self._cases.get(case_id)
            if case is None:
                return None
            return ReviewCase.from_json(resolved(case, resolution, by).to_json())

    def add_evidence(self, principal: str, detector: str, amount: float) -> PrincipalState:
        with self._lock:
            state = self._states.setdefault(principal, PrincipalState())
            state.evidence[detector] = state.evidence.get(detector, 0.0) + amount
            return PrincipalState(dict(state.evidence), state.action, state.action_until)

    def get_state(self, principal: str) -> PrincipalState:
        state = self._states.get(principal)
        if state is None:
            return PrincipalState()
        return PrincipalState(dict(state.evidence), state.action, state.action_until)

    def set_action(self, principal: str, action: str | None, until: float | None) -> None:
        with self._lock:
            state = self._states.setdefault(principal, PrincipalState())
            state.action, state.action_until = action, until

    def append_history(self, key: str, item: bytes, max_items: int) -> None:
        with self._lock:
            buf = self._history.get(key)
            if buf is None or buf.maxlen != max_items:
                buf = deque(buf or (), maxlen=max_items)
                self._history[key] = buf
            buf.append(item)

    def read_history(self, key: str, limit: int | None = None) -> list[bytes]:
        items = list(self._history.get(key, ()))
        return items[-limit:] if limit else items

    def append_logs(self, origin: str, appends: Sequence[LogAppend]) -> None:
        with self._lock:
            for a in appends:
                buf, last = self._logs.get(a.key, (None, 0))
                if buf is None or buf.maxlen != a.max_items:
                    buf = deque(buf or (), maxlen=a.max_items)
                for item in a.items:
                    last += 1
                    buf.append((last, origin, item))
                self._logs[a.key] = (buf, last)

    def read_logs(
        self, origin: str, reads: Sequence[LogRead], then_append: Sequence[LogAppend] = ()
    ) -> list[LogSlice]:
        out = []
        with self._lock:
            for r in reads:
                held = self._logs.get(r.key)
                if held is None:
                    out.append(LogSlice([], 0))
                    continue
                buf, last = held
                cursor = r.cursor if r.cursor <= last else 0
                items: list[bytes] = []
                for seq, who, item in reversed(buf):  # newest first, stop at the cursor
                    if seq <= cursor or last - seq >= r.limit:
                        break
                    if r.own or who != origin:
                        items.append(item)
                items.reverse()
                out.append(LogSlice(items, last))
        if then_append:
            self.append_logs(origin, then_append)
        return out

    def close(self) -> None:
        return None
