"""Quotas and rate limits per authenticated principal, plus a global limit, on `limits`.

Several windows apply at once (e.g. `10/second`, `1000/day`, `50000 total`);
a request must fit in all of them. Cost is counted in rows by default, so a
batch of 500 inputs spends 500 queries — the unit an attacker's budget is in.
Limits are keyed by the principal that authentication established, never by
a raw header or address. Counters live in the guard's store, so they survive
restarts (SQLite) and are shared by replicas (Redis).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Literal

from limits import RateLimitItem, RateLimitItemPerYear, parse
from limits.errors import StorageError
from pydantic import ConfigDict, Field, field_validator

from bastion.errors import StoreError
from bastion.guard.policy import FailMode, GuardEnv, PolicyBase, PolicyOptions, store_unavailable
from bastion.guard.request import Allow, Deny, Request, Verdict

__all__ = ["QuotaPolicy", "parse_limit"]

_TOTAL = re.compile(r"^\s*(\d+)\s*(?:/\s*)?total\s*$")


def parse_limit(text: str) -> RateLimitItem:
    """`10/second`, `100 per minute`, `5/10 seconds`, or `50000 total` (never resets)."""
    m = _TOTAL.match(text)
    if m:
        return RateLimitItemPerYear(int(m.group(1)), 1000)
    try:
        return parse(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a limit; write e.g. '10/second', '1000/day' or '50000 total'"
        ) from None


class QuotaPolicy(PolicyBase):
    name = "quota"

    class Options(PolicyOptions):
        model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

        per_principal: list[str] = Field(default_factory=list)
        global_limits: list[str] = Field(default_factory=list, alias="global")
        cost: Literal["rows", "request"] = "rows"
        on_store_error: FailMode = "closed"

        @field_validator("per_principal", "global_limits")
        @classmethod
        def _parse(cls, value: list[str]) -> list[str]:
            for text in value:
                parse_limit(text)
            return value

    def __init__(self, options: Options, env: GuardEnv) -> None:
        self.options = options
        # fixed windows, read and counted on the store's `limits` storage directly: one
        # get and one incr per window instead of the strategy's test/hit/stats round trips
        self.storage = env.store.rate_limit_storage()
        self.per_principal = [parse_limit(t) for t in options.per_principal]
        self.global_ = [parse_limit(t) for t in options.global_limits]
        self._keys: dict[str, list[tuple[RateLimitItem, str, bool]]] = {}
        self._windows: dict[str, list[tuple[str, int, int]]] = {}
        # a storage that checks and counts every window in one call (the memory store's)
        self._take: Callable[..., int | list[tuple[int, float]]] | None = getattr(
            self.storage, "take", None
        )

    def on_request(self, request: Request) -> Verdict:
        cost = max(request.rows, 1) if self.options.cost == "rows" else 1
        who = request.principal_id
        items = self._keys.get(who)
        if items is None:
            items = [(i, i.key_for("p", who), True) for i in self.per_principal]
            items += [(i, i.key_for("g"), False) for i in self.global_]
            if len(self._keys) > 10_000:
                self._keys.clear()
                self._windows.clear()
            self._keys[who] = items
            self._windows[who] = [(key, i.amount, i.get_expiry()) for i, key, _ in items]
        try:
            if self._take is not None:
                return self._taken(items, self._take(self._windows[who], cost), cost)
            for item, key, mine in items:
                if cost > item.amount:
                    return _never_fits(cost, item)
                if self.storage.get(key) + cost > item.amount:
                    return self._deny(item, key, mine)
            best: tuple[int, RateLimitItem, str] | None = None
            over: tuple[RateLimitItem, str, bool] | None = None
            for item, key, mine in items:
                count = self.storage.incr(key, item.get_expiry(), cost)
                if count > item.amount and over is None:
                    over = (item, key, mine)  # lost a race with a concurrent request
                left = max(0, item.amount - count)
                if mine and (best is None or left < best[0]):
                    best = (left, item, key)
            if over is not None:
                return self._deny(*over)
            if best is None:
                return Allow()
            return _allow(best[1], best[0], self.storage.get_expiry(best[2]))
        except (StoreError, StorageError) as exc:
            return store_unavailable(self.name, self.options.on_store_error, exc)

    def _taken(
        self,
        items: list[tuple[RateLimitItem, str, bool]],
        got: int | list[tuple[int, float]],
        cost: int,
    ) -> Verdict:
        """The verdict from a one-call `take`: the same answers as the get/incr path."""
        if isinstance(got, int):  # the first window it does not fit; nothing was counted
            item, key, mine = items[got]
            if cost > item.amount:
                return _never_fits(cost, item)
            return self._deny(item, key, mine)
        best: tuple[int, RateLimitItem, float] | None = None
        for (item, _, mine), (count, until) in zip(items, got, strict=True):
            left = max(0, item.amount - count)
            if mine and (best is None or left < best[0]):
                best = (left, item, until)
        if best is None:
            return Allow()
        return _allow(best[1], best[0], best[2])

    def _deny(self, item: RateLimitItem, key: str, mine: bool) -> Deny:
        wait = max(1, math.ceil(self.storage.get_expiry(key) - time.time()))
        scope = "principal" if mine else "global"
        return Deny(
            429,
            "rate_limited",
            f"{scope} limit of {_describe(item)} reached; retry in {wait} s",
            headers={
                "Retry-After": str(wait),
                "RateLimit-Limit": str(item.amount),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(wait),
            },
            body={"limit": _describe(item), "scope": scope},
        )


def _allow(item: RateLimitItem, left: int, until: float) -> Allow:
    """Allowed, with the RateLimit-* headers of the principal's tightest window."""
    reset = max(0, math.ceil(until - time.time()))
    return Allow(
        headers={
            "RateLimit-Limit": str(item.amount),
            "RateLimit-Remaining": str(left),
            "RateLimit-Reset": str(reset),
        }
    )


def _never_fits(cost: int, item: RateLimitItem) -> Deny:
    return Deny(
        413,
        "batch_exceeds_limit",
        f"a batch of {cost} rows can never fit the limit of {_describe(item)}; "
        "send smaller batches",
    )


def _describe(item: RateLimitItem) -> str:
    if isinstance(item, RateLimitItemPerYear) and item.multiples >= 1000:
        return f"{item.amount} total"
    per = (
        f"{item.multiples} {item.GRANULARITY.name}s"
        if item.multiples > 1
        else (item.GRANULARITY.name)
    )
    return f"{item.amount}/{per}"
