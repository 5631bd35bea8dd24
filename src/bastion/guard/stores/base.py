"""The state store protocol: everything the guard must remember across requests and replicas.

Quotas live in a `limits` storage the store hands out; the review queue,
per-principal detection evidence and actions, and bounded detector histories
are the store's own. Any failure of the backing service is raised as
`StoreError`, so policies can fail closed or open on purpose.

Detector histories are *logs*: bounded, append-only, and read incrementally
with a cursor. Each replica appends its own entries tagged with its origin
and, before judging a query, reads what the other replicas appended since its
cursor — so every replica judges on the union of the evidence, as if all the
traffic had hit it, at the cost of one round trip per read and per append.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from limits.storage import Storage

__all__ = ["LogAppend", "LogRead", "LogSlice", "PrincipalState", "ReviewCase", "Store"]


@dataclass
class ReviewCase:
    """A request held for a human instead of being answered by the model."""

    principal: str
    reason: str
    inputs: dict[str, Any]
    model_output: dict[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    created_at: float = field(default_factory=time.time)
    status: str = "pending"
    resolution: str | None = None
    resolved_by: str | None = None
    resolved_at: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ReviewCase:
        return cls(**json.loads(text))


@dataclass
class PrincipalState:
    """Accumulated detection evidence and the action currently applied to a principal."""

    evidence: dict[str, float] = field(default_factory=dict)
    action: str | None = None
    action_until: float | None = None

    @property
    def total(self) -> float:
        return sum(self.evidence.values())

    def active_action(self, now: float | None = None) -> str | None:
        if self.action is None:
            return None
        if self.action_until is not None and (now or time.time()) >= self.action_until:
            return None
        return self.action


class LogAppend(NamedTuple):
    """Entries for one log; the log keeps only its newest `max_items` (and, where the store
    can expire keys, forgets a log untouched for `ttl_s`)."""

    key: str
    items: Sequence[bytes]
    max_items: int
    ttl_s: float | None = None


class LogRead(NamedTuple):
    """Ask for the entries of `key` appended after `cursor` (0: from the start), at most the
    newest `limit` of them; `own` also returns the reader's own entries (a cold start, after
    the reader forgot what it held)."""

    key: str
    cursor: int
    limit: int
    own: bool = False


class LogSlice(NamedTuple):
    """Entries other origins appended after the cursor, oldest first, and the cursor to pass
    next time (the log's newest sequence number when it was read, own entries included)."""

    items: list[bytes]
    cursor: int


@runtime_checkable
class Store(Protocol):
    """One backing store shared by all policies of a guard (and by replicas, for Redis)."""

    name: str

    def rate_limit_storage(self) -> Storage: ...

    def ping(self) -> None: ...

    # review queue
    def put_case(self, case: ReviewCase) -> None: ...

    def get_case(self, case_id: str) -> ReviewCase | None: ...

    def list_cases(self, status: str | None = None, limit: int = 100) -> list[ReviewCase]: ...

    def resolve_case(self, case_id: str, resolution: str, by: str) -> ReviewCase | None: ...

    # detection evidence and actions, per principal
    def add_evidence(self, principal: str, detector: str, amount: float) -> PrincipalState: ...

    def get_state(self, principal: str) -> PrincipalState: ...

    def set_action(self, principal: str, action: str | None, until: float | None) -> None: ...

    # bounded per-key histories for stateful detectors
    def append_history(self, key: str, item: bytes, max_items: int) -> None: ...

    def read_history(self, key: str, limit: int | None = None) -> list[bytes]: ...

    # bounded logs read incrementally, so replicas exchange detector histories; sequence
    # numbers grow per key; a cursor past the log's end (the log expired, or the server lost
    # it) reads the log from its start again; all keys of one call cost one round trip;
    # `then_append` appends after reading, in the same round trip (for entries that do not
    # depend on what is read)
    def append_logs(self, origin: str, appends: Sequence[LogAppend]) -> None: ...

    def read_logs(
        self, origin: str, reads: Sequence[LogRead], then_append: Sequence[LogAppend] = ()
    ) -> list[LogSlice]: ...

    def close(self) -> None: ...


def resolved(case: ReviewCase, resolution: str, by: str) -> ReviewCase:
    case.status = "resolved"
    case.resolution = resolution
    case.resolved_by = by
    case.resolved_at = time.time()
    return case
