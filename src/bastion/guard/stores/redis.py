"""Redis store: one state shared by several guard replicas (quotas, reviews, detections).

Needs the `redis` extra. Rate-limit counters use `limits`' own Redis storage on
the same server; everything else lives under `<prefix>:` keys. Every Redis
failure becomes `StoreError` after a short socket timeout, so a dead Redis
costs a request a fraction of a second, not a hang.

A detector log is a list (the newest `max_items` entries, each prefixed with
its origin) plus a counter of entries ever appended; two small Lua scripts
keep them consistent, so the counter says which list positions hold the
entries after a cursor and a read fetches only those. All the logs of one
call go in one pipeline: one round trip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from limits.storage import RedisStorage, Storage

from bastion.errors import ConfigError, StoreError
from bastion.guard.stores.base import (
    LogAppend,
    LogRead,
    LogSlice,
    PrincipalState,
    ReviewCase,
    resolved,
)

__all__ = ["RedisStore"]

# KEYS: list, counter; ARGV: max_items, ttl in ms (0: none), items...
# A new counter starts at the server's clock in microseconds, not at 0: after a Redis restart
# (or an expiry) the new log's numbers are above every cursor handed out for the old one, so
# a replica that held a cursor into the old log reads the whole new log instead of skipping
# its first entries.
_APPEND = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], t[1] .. string.format('%06d', tonumber(t[2])))
end
local last = redis.call('INCRBY', KEYS[2], #ARGV - 2)
for i = 3, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return last
"""

# KEYS: list, counter; ARGV: cursor, limit -> {last, {entries after the cursor}}
_READ = """
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local cursor = tonumber(ARGV[1])
if cursor > last then cursor = 0 end
local n = math.min(last - cursor, tonumber(ARGV[2]))
if n <= 0 then return {last, {}} end
return {last, redis.call('LRANGE', KEYS[1], -n, -1)}
"""


class RedisStore:
    name = "redis"

    def __init__(self, url: str, prefix: str = "bastion", timeout_s: float = 0.5) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigError(
                "store kind 'redis' needs the redis client",
                hint="pip install 'bastion-ml[redis]'",
            ) from None
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        opts: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
        self._r = redis.Redis.from_url(url, **opts)
        self._p = prefix
        self._limits = RedisStorage(
            url, key_prefix=f"{prefix}:limits", wrap_exceptions=True, **opts
        )
        self.url = url
        self._noscript: type[Exception] = redis.exceptions.NoScriptError
        self._sha = {
            lua: hashlib.sha1(lua.encode(), usedforsecurity=False).hexdigest()
            for lua in (_APPEND, _READ)
        }

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self._errors as exc:
            raise StoreError(f"Redis store {self.url}: {exc}") from None

    def rate_limit_storage(self) -> Storage:
        return self._limits

    def ping(self) -> None:
        self._call(self._r.ping)

    def put_case(self, case: ReviewCase) -> None:
        pipe = self._r.pipeline()
        pipe.set(f"{self._p}:case:{case.id}", case.to_json())
        pipe.zadd(f"{self._p}:cases", {case.id: case.created_at})
        self._call(pipe.execute)

    def get_case(self, case_id: str) -> ReviewCase | None:
        doc = self._call(self._r.get, f"{self._p}:case:{case_id}")
        return ReviewCase.from_json(doc) if doc else None

    def list_cases(self, status: str | None = None, limit: int = 100) -> list[ReviewCase]:
        ids = self._call(self._r.zrange, f"{self._p}:cases", 0, -1)
        out: list[ReviewCase] = []
        for raw in ids:
            case = self.get_case(raw.decode())
            if case and (status is None or case.status == status):
                out.append(case)
                if len(out) >= limit:
                    break
        return out

    def resolve_case(self, case_id: str, resolution: str, by: str) -> ReviewCase | None:
        case = self.get_case(case_id)
        if case is None:
            return None
        self.put_case(resolved(case, resolution, by))
        return case

    def add_evidence(self, principal: str, detector: str, amount: float) -> PrincipalState:
        self._call(self._r.hincrbyfloat, f"{self._p}:evidence:{principal}", detector, amount)
        return self.get_state(principal)

    def get_state(self, principal: str) -> PrincipalState:
        pipe = self._r.pipeline()
        pipe.hgetall(f"{self._p}:evidence:{principal}")
        pipe.hgetall(f"{self._p}:action:{principal}")
        ev, act = self._call(pipe.execute)
        until = act.get(b"until")
        return PrincipalState(
            {k.decode(): float(v) for k, v in ev.items()},
            act[b"action"].decode() if act.get(b"action") else None,
            float(until) if until else None,
        )

    def set_action(self, principal: str, action: str | None, until: float | None) -> None:
        key = f"{self._p}:action:{principal}"
        pipe = self._r.pipeline()
        pipe.delete(key)
        if action is not None:
            pipe.hset(key, mapping={"action": action, "until": until or ""})
            if until is not None:
                pipe.expireat(key, int(until) + 1)
        self._call(pipe.execute)

    def append_history(self, key: str, item: bytes, max_items: int) -> None:
        k = f"{self._p}:history:{key}"
        pipe = self._r.pipeline()
        pipe.rpush(k, item)
        pipe.ltrim(k, -max_items, -1)
        self._call(pipe.execute)

    def read_history(self, key: str, limit: int | None = None) -> list[bytes]:
        start = -limit if limit else 0
        items: list[bytes] = self._call(self._r.lrange, f"{self._p}:history:{key}", start, -1)
        return items

    def _log_keys(self, key: str) -> list[str]:
        return [f"{self._p}:log:{key}", f"{self._p}:logn:{key}"]

    def _scripted(self, queue: Callable[[Any], None]) -> list[Any]:
        """Run a pipeline of EVALSHA calls in one round trip; load the scripts (once, or again
        after Redis lost them in a restart) only when Redis says it does not know them.
        redis-py's own Script objects would ask SCRIPT EXISTS first: a second round trip."""
        for attempt in (1, 2):
            pipe = self._r.pipeline(transaction=False)
            queue(pipe)
            try:
                result: list[Any] = pipe.execute()
                return result
            except self._noscript:
                if attempt == 2:
                    raise
                for lua in self._sha:
                    self._call(self._r.script_load, lua)
            except self._errors as exc:
                raise StoreError(f"Redis store {self.url}: {exc}") from None
        return []  # not reached

    def _queue_appends(self, pipe: Any, tag: bytes, appends: Sequence[LogAppend]) -> None:
        sha = self._sha[_APPEND]
        for a in appends:
            if a.items:
                ttl_ms = int(a.ttl_s * 1000) if a.ttl_s else 0
                items = (tag + item for item in a.items)
                pipe.evalsha(sha, 2, *self._log_keys(a.key), a.max_items, ttl_ms, *items)

    def append_logs(self, origin: str, appends: Sequence[LogAppend]) -> None:
        tag = bytes([len(origin)]) + origin.encode()
        self._scripted(lambda pipe: self._queue_appends(pipe, tag, appends))

    def read_logs(
        self, origin: str, reads: Sequence[LogRead], then_append: Sequence[LogAppend] = ()
    ) -> list[LogSlice]:
        tag = bytes([len(origin)]) + origin.encode()
        sha = self._sha[_READ]

        def queue(pipe: Any) -> None:
            for r in reads:
                pipe.evalsha(sha, 2, *self._log_keys(r.key), r.cursor, r.limit)
            self._queue_appends(pipe, tag, then_append)

        out = []
        results = self._scripted(queue)[: len(reads)]
        for r, (last, raw) in zip(reads, results, strict=True):
            items = [e[e[0] + 1 :] for e in raw if r.own or not e.startswith(tag)]
            out.append(LogSlice(items, int(last)))
        return out

    def close(self) -> None:
        self._r.close()
