"""In-memory store: for tests, the in-process wrapper and single-process demos (no restart)."""

from __future__ import annotations

import threading
from collections import deque

from limits.storage import MemoryStorage, Storage

from bastion.guard.stores.base import PrincipalState, ReviewCase, resolved

__all__ = ["MemoryStore"]


class MemoryStore:
    name = "memory"

    def __init__(self) -> None:
        self._limits = MemoryStorage()
        self._cases: dict[str, ReviewCase] = {}
        self._states: dict[str, PrincipalState] = {}
        self._history: dict[str, deque[bytes]] = {}
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

    def close(self) -> None:
        return None
