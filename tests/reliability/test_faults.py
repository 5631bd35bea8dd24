"""Faults under load, with real processes: the model server, Redis and the guard itself die.

Each test kills a real process with SIGKILL while requests are flowing and
checks what clients saw while it was down, that service came back without
restarting anything else, and that the audit log stayed whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.guard.servers import iris_model
from tests.guard.test_policies import borderline_virginica
from tests.reliability import processes as P
from tests.reliability.conftest import INFER, auth, body

pytestmark = [pytest.mark.network, pytest.mark.slow]


def _poll(check: Callable[[], bool], timeout_s: float = 15.0) -> float:
    """Seconds until `check()` holds (fails the test after `timeout_s`)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout_s, "no recovery in time"
        time.sleep(0.05)
    return time.monotonic() - start


def _ok(url: str, sent: list[int], who: str = "alice") -> bool:
    """One probe request (its status goes to `sent`: it is a decision the guard audits too)."""
    try:
        status = httpx.post(url + INFER, json=body(0), headers=auth(who), timeout=5).status_code
    except httpx.HTTPError:
        return False
    sent.append(status)
    return status == 200


def test_model_server_killed_mid_load_gives_clear_502s_then_recovers(
    tmp_path: Path, guard_config: Callable[..., Path]
) -> None:
    model = P.upstream(tmp_path)
    guard = P.guard(tmp_path, guard_config(quota=["100000 total"]), P.base(model))

    def send(client: httpx.Client, n: int) -> tuple[str, httpx.Response]:
        who = ("alice", "carol")[n % 2]
        return who, client.post(P.base(guard) + INFER, json=body(n), headers=auth(who))

    load = P.Load(send, threads=3)
    with P.running(model, guard), load.running():
        time.sleep(1.0)
        model.kill()
        down = time.monotonic()
        time.sleep(1.5)
        up = time.monotonic()
        model.start()  # same port, a new process
        recovered = _poll(
            lambda: (
                load.since(time.monotonic() - 0.3) != []
                and all(a[2] == 200 for a in load.since(time.monotonic() - 0.3))
            )
        )
        time.sleep(0.5)
        assert guard.alive(), guard.output()
    assert not load.failures, load.failures[:3]
    while_down = load.since(down + 0.2, up)
    assert while_down and {a[2] for a in while_down} == {502}
    assert {a[3]["error"] for a in while_down} <= {"upstream_unavailable", "upstream_error"}
    assert {a[2] for a in load.answers} <= {200, 502}, load.statuses()
    assert recovered < 5.0
    decided = [
        r for r in P.audit_records(tmp_path / "guard-audit.jsonl") if r["event"] == "decision"
    ]
    assert len(decided) == len(load.answers)
    assert P.verify_log(tmp_path / "guard-audit.jsonl").returncode == 0


def test_redis_killed_mid_load_follows_fail_closed_and_fail_open_and_recovers(
    tmp_path: Path, guard_config: Callable[..., Path], need_redis: None
) -> None:
    store = P.redis(tmp_path)
    model = P.upstream(tmp_path)
    url = f"redis://127.0.0.1:{store.port}/0"
    guards = {}
    for mode in ("closed", "open"):
        cfg = guard_config(
            mode,
            quota=["100000 total"],
            decision=False,
            quota_extra={"on_store_error": mode},
            store={"kind": "redis", "url": url, "timeout_s": 0.2},
        )
        guards[mode] = P.guard(tmp_path, cfg, P.base(model), name=mode)

    def send(client: httpx.Client, n: int) -> tuple[str, httpx.Response]:
        mode = ("closed", "open")[n % 2]
        return mode, client.post(P.base(guards[mode]) + INFER, json=body(n), headers=auth("alice"))

    load = P.Load(send, threads=2)
    with P.running(store, model, *guards.values()), load.running():
        time.sleep(1.0)
        store.kill()
        down = time.monotonic()
        time.sleep(2.0)
        up = time.monotonic()
        store.start()
        probes: dict[str, list[int]] = {mode: [] for mode in guards}
        for mode, g in guards.items():  # no guard restart: each comes back by itself
            _poll(lambda g=g, mode=mode: _ok(P.base(g), probes[mode]))
        back = time.monotonic()
        time.sleep(0.5)
        assert all(g.alive() for g in guards.values())
    assert not load.failures, load.failures[:3]
    closed = [a for a in load.since(down + 0.3, up) if a[1] == "closed"]
    opened = [a for a in load.since(down + 0.3, up) if a[1] == "open"]
    assert closed and {a[2] for a in closed} == {503}
    assert {a[3]["error"] for a in closed} == {"store_unavailable"}
    assert opened and {a[2] for a in opened} == {200}, "fail-open keeps answering"
    after = load.since(back + 0.1)
    assert after and {a[2] for a in after} == {200}
    assert {a[2] for a in load.answers} <= {200, 503}
    for mode in guards:
        log = tmp_path / f"{mode}-audit.jsonl"
        decided = [r for r in P.audit_records(log) if r["event"] == "decision"]
        assert len(decided) == len([a for a in load.answers if a[1] == mode]) + len(probes[mode])
        assert P.verify_log(log).returncode == 0


def test_guard_sigkilled_and_restarted_on_sqlite_keeps_state_and_reports_a_torn_line(
    tmp_path: Path, guard_config: Callable[..., Path]
) -> None:
    cfg = guard_config(quota=["10 total"])
    log = tmp_path / "guard-audit.jsonl"
    model = P.upstream(tmp_path)
    guard = P.guard(tmp_path, cfg, P.base(model))
    x = borderline_virginica(iris_model()).ravel().tolist()
    held_body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": x}]}
    with P.running(model, guard):
        url = P.base(guard)
        first = [httpx.post(url + INFER, json=body(0), headers=auth("alice")) for _ in range(6)]
        assert [r.status_code for r in first] == [200] * 6
        held = httpx.post(url + INFER, json=held_body, headers=auth("bob"))
        assert held.status_code == 202
        case = held.json()["case"]
        guard.kill()
        records = P.audit_records(log)
        assert [r["event"] for r in records].count("decision") == 7, "nothing lost in the crash"
        # what a crash in the middle of a write leaves behind: half a record, no newline
        with log.open("ab") as f:
            f.write(b'{"seq": 9, "event": "decision", "princ')
        torn = P.verify_log(log)
        assert torn.returncode == 1 and "torn" in torn.stdout + torn.stderr
        guard.start()
        again = [httpx.post(url + INFER, json=body(0), headers=auth("alice")) for _ in range(6)]
        assert [r.status_code for r in again] == [200] * 4 + [429] * 2, "quota survived"
        cases = httpx.get(url + "/guard/review", headers=auth("rita")).json()["cases"]
        assert case in [c["id"] for c in cases], "review queue survived"
        assert guard.alive()
    check = P.verify_log(log)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "torn" in check.stdout + check.stderr, "the torn line stays reported as a note"
    recovery = [r for r in P.audit_records_tolerant(log) if r.get("event") == "recovery"]
    assert len(recovery) == 1 and recovery[0]["torn_line"] == len(records) + 1
