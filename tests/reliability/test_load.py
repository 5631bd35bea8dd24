"""Sustained load on the guard proxy: every answer as expected, every decision audited."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.reliability import processes as P
from tests.reliability.conftest import INFER, auth, body

pytestmark = [pytest.mark.network, pytest.mark.slow]

LOAD_S = 6.0
ALLOWANCE = 150  # each principal's total quota


def test_sustained_load_has_no_5xx_and_one_intact_audit_record_per_decision(
    tmp_path: Path, guard_config: Callable[..., Path]
) -> None:
    cfg = guard_config(quota=[f"{ALLOWANCE} total"])
    model = P.upstream(tmp_path)
    guard = P.guard(tmp_path, cfg, P.base(model))
    kinds = ("alice", "carol", "invalid", "badkey")

    def send(client: httpx.Client, n: int) -> tuple[str, httpx.Response]:
        kind = kinds[n % len(kinds)]
        url = P.base(guard) + INFER
        if kind == "invalid":
            return kind, client.post(url, json=body(n, bad=True), headers=auth("bob"))
        if kind == "badkey":
            return kind, client.post(url, json=body(n), headers={"Authorization": "Bearer x.y"})
        return kind, client.post(url, json=body(n), headers=auth(kind))

    load = P.Load(send, threads=4)
    with P.running(model, guard):
        started = time.monotonic()
        with load.running():
            time.sleep(LOAD_S)
        elapsed = time.monotonic() - started
        assert guard.alive()
    answers = load.answers
    assert not load.failures, load.failures[:3]
    assert len(answers) > 200, f"only {len(answers)} requests in {elapsed:.1f} s"
    expected = {"alice": {200, 202, 429}, "carol": {200, 202, 429}, "invalid": {422, 429}}
    expected["badkey"] = {401}
    for _, kind, status, doc in answers:
        assert status in expected[kind], (kind, status, doc)
        if status >= 400:
            assert isinstance(doc, dict) and doc.get("error"), (kind, status, doc)
    for who in ("alice", "carol"):
        served = load.statuses(who)
        if sum(served.values()) > ALLOWANCE:
            assert served[200] + served[202] == ALLOWANCE, (who, served)
    # every decided request has exactly one audit record, with the same status
    records = [r for r in P.audit_records(tmp_path / "guard-audit.jsonl")]
    decided = [r for r in records if r.get("event") == "decision"]
    assert len(decided) == len(answers)
    assert Counter(r["status"] for r in decided) == Counter(s for _, _, s, _ in answers)
    check = P.verify_log(tmp_path / "guard-audit.jsonl")
    assert check.returncode == 0, check.stdout + check.stderr
