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
from typing import Literal

from limits import RateLimitItem, RateLimitItemPerYear, parse
from limits.errors import StorageError
from limits.strategies import FixedWindowRateLimiter
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
        self.limiter = FixedWindowRateLimiter(env.store.rate_limit_storage())
        self.per_principal = [parse_limit(t) for t in options.per_principal]
        self.global_ = [parse_limit(t) for t in options.global_limits]

    def on_request(self, request: Request) -> Verdict:
        cost = max(request.rows, 1) if self.options.cost == "rows" else 1
        who = request.principal_id
        items: list[tuple[RateLimitItem, tuple[str, ...]]] = [
            (i, ("p", who)) for i in self.per_principal
        ]
        items += [(i, ("g",)) for i in self.global_]
        try:
            for item, ident in items:
                if cost > item.amount:
                    return Deny(
                        413,
                        "batch_exceeds_limit",
                        f"a batch of {cost} rows can never fit the limit of "
                        f"{_describe(item)}; send smaller batches",
                    )
                if not self.limiter.test(item, *ident, cost=cost):
                    return self._deny(item, ident)
            for item, ident in items:
                if not self.limiter.hit(item, *ident, cost=cost):
                    return self._deny(item, ident)
            return Allow(headers=self._headers(items))
        except (StoreError, StorageError) as exc:
            return store_unavailable(self.name, self.options.on_store_error, exc)

    def _deny(self, item: RateLimitItem, ident: tuple[str, ...]) -> Deny:
        reset = self.limiter.get_window_stats(item, *ident).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        scope = "global" if ident[0] == "g" else "principal"
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

    def _headers(self, items: list[tuple[RateLimitItem, tuple[str, ...]]]) -> dict[str, str]:
        best: tuple[int, float, RateLimitItem] | None = None
        for item, ident in items:
            if ident[0] != "p":
                continue
            stats = self.limiter.get_window_stats(item, *ident)
            if best is None or stats.remaining < best[0]:
                best = (stats.remaining, stats.reset_time, item)
        if best is None:
            return {}
        remaining, reset, item = best
        return {
            "RateLimit-Limit": str(item.amount),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(max(0, math.ceil(reset - time.time()))),
        }


def _describe(item: RateLimitItem) -> str:
    if isinstance(item, RateLimitItemPerYear) and item.multiples >= 1000:
        return f"{item.amount} total"
    per = (
        f"{item.multiples} {item.GRANULARITY.name}s"
        if item.multiples > 1
        else (item.GRANULARITY.name)
    )
    return f"{item.amount}/{per}"
