"""Who may query, and how fast: authentication and rate-limit probes.

The attacker's query budget is the product of these two: an endpoint anyone can
call with no limit hands out unlimited queries, and the rate we measure turns
into the wall-clock time a real attack of K queries needs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

from bastion.errors import UsageError
from bastion.findings import Finding, Severity
from bastion.probes.base import ProbeSession
from bastion.target.ledger import parse_rate, parse_window

__all__ = ["AuthProbe", "RateLimitProbe", "declared_allowance"]

_BOGUS_KEY = "bastion-probe-invalid-key-0000"


class AuthProbe:
    name = "auth"
    max_requests = 3
    order = 20

    def run(self, session: ProbeSession) -> Iterator[Finding]:
        session.prepare()
        x = session.valid_inputs(1)
        anonymous = session.infer(x, authenticate=False)
        evidence = {"unauthenticated_status": anonymous.status}
        if anonymous.status == 200:
            session.observe(self.name, required=False, **evidence)
            yield session.finding(
                "P103",
                "Endpoint answers unauthenticated requests",
                f"A request with no credentials got HTTP 200 and a prediction from "
                f"{session.dialect.infer_url}: anyone who can reach it can query the model as "
                "often as they like, and no quota can be tied to a principal.",
                Severity.HIGH,
                evidence,
                atlas=("AML.T0040", "AML.T0024"),
                owasp=("ML05",),
                cwe=("CWE-306",),
                mitigations=("M03",),
            )
            return
        header = session.endpoint.options.api_key_header
        value = f"Bearer {_BOGUS_KEY}" if header.lower() == "authorization" else _BOGUS_KEY
        wrong = session.send(
            "POST",
            session.dialect.infer_url,
            json_body=session.dialect.encode(x),
            headers={header: value},
            authenticate=False,
        )
        evidence["wrong_credentials_status"] = wrong.status
        required = anonymous.status in (401, 403) and wrong.status in (401, 403)
        session.observe(self.name, required=required, **evidence)
        if wrong.status == 200:
            yield session.finding(
                "P104",
                "Endpoint accepts made-up credentials",
                f"A request without credentials was refused (HTTP {anonymous.status}) but one "
                f"with an invented key in {header} got HTTP 200: the key is checked for presence, "
                "not validity.",
                Severity.HIGH,
                evidence,
                atlas=("AML.T0040",),
                cwe=("CWE-287",),
                mitigations=("M03",),
            )


def declared_allowance(rate_limit: str | None) -> tuple[int, float] | None:
    """'100/minute' → (100, 60.0): how many requests one declared window allows."""
    if not rate_limit:
        return None
    try:
        count, window = parse_window(rate_limit)
    except UsageError:
        per_second = parse_rate(rate_limit)  # a bare number: requests per second
        count, window = max(1.0, per_second), 1.0
    return int(count), window


class RateLimitProbe:
    """A bounded burst: when (if ever) does 429/503 (or a block, 403) appear, with `Retry-After`?"""

    name = "rate_limit"
    max_requests = 200
    order = 90

    def run(self, session: ProbeSession) -> Iterator[Finding]:
        settings = session.settings
        allowance = declared_allowance(session.endpoint.declared.rate_limit)
        burst = settings.burst
        if allowance is not None:
            # To refute a declared limit, the burst must exceed one window's allowance.
            burst = max(burst, allowance[0] + 5)
        burst = min(burst, self.max_requests)
        statuses: Counter[int] = Counter()
        accepted = 0
        first_limited: int | None = None
        retry_after: float | None = None
        blocked = False
        x = session.valid_inputs(1)
        t0 = time.monotonic()
        for i in range(burst):
            if time.monotonic() - t0 > settings.burst_seconds:
                break
            exchange = session.infer(x, retry_on_429=False)
            statuses[exchange.status] += 1
            if exchange.status in (429, 503):
                first_limited = i
                retry_after = exchange.retry_after
                break
            if exchange.status in (401, 403):
                # refused after answering the same caller: cut off (a guard's block), which
                # limits an attacker harder than any rate does
                if exchange.status == 403 and accepted:
                    first_limited, blocked = i, True
                break
            if exchange.status == 200:
                accepted += 1
        elapsed = time.monotonic() - t0
        sent = sum(statuses.values())
        if accepted == 0 and first_limited is None:
            session.observe(self.name, conclusive=False, statuses=dict(statuses))
            return
        if first_limited is None:
            rate = accepted / max(elapsed, 1e-6)
        elif blocked:
            rate = accepted / 86_400  # what this caller got, counted as one day's allowance
        else:
            # One window's allowance per (time to spend it + the wait we were told).
            rate = accepted / max(elapsed + (retry_after or 1.0), 1e-6)
        attack_s = settings.attack_queries / rate if rate > 0 else None
        evidence = {
            "burst_sent": sent,
            "accepted": accepted,
            "elapsed_s": round(elapsed, 3),
            "first_limited_at": first_limited,
            "retry_after_s": retry_after,
            "blocked": blocked,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "sustainable_rate_per_s": float(f"{rate:.4g}"),  # a block's rate is tiny
            "attack_queries": settings.attack_queries,
            "time_for_attack_s": None if attack_s is None else round(attack_s, 1),
        }
        # Refuted only if more than one window's allowance went through without any refusal.
        exceeded = (
            allowance is not None
            and first_limited is None
            and accepted > allowance[0]
            and elapsed < allowance[1]
        )
        session.observe(
            self.name,
            conclusive=True,
            limited=first_limited is not None,
            declared_allowance=list(allowance) if allowance else None,
            exceeded_declared=exceeded,
            **evidence,
        )
        if first_limited is None:
            yield session.finding(
                "P105",
                "No rate limit observed",
                f"{accepted} requests in {elapsed:.2f}s were all answered (no 429/503): an "
                f"attacker sustains at least {rate:.0f} queries/s, so an attack of "
                f"{settings.attack_queries} queries takes about {attack_s or 0:.0f}s.",
                Severity.HIGH,
                evidence,
                atlas=("AML.T0024.002", "AML.T0034.000", "AML.T0029"),
                owasp=("ML05",),
                cwe=("CWE-770",),
                mitigations=("M04", "M06"),
            )
        elif retry_after is None and not blocked:
            yield session.finding(
                "P106",
                "Rate limit answers without Retry-After",
                f"HTTP {exchange.status} came after {accepted} requests but without a "
                "Retry-After header: honest clients must guess and hammer the endpoint.",
                Severity.LOW,
                evidence,
                cwe=("CWE-770",),
                mitigations=("M04", "M06"),
            )
