"""`bastion demo`: the whole loop on a system built on the spot.

describe (a careless deployment and its manifest) → assess (audit) → mitigate
(a guard config derived from the findings, and the guard started in front) →
verify (the same audit through the guard) → one before/after report. Every
process it starts listens on loopback and is stopped on the way out, Ctrl-C
included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bastion.audit import AuditOptions, audit
from bastion.compare import compare
from bastion.demo.careless import train, write_system
from bastion.demo.processes import Supervisor
from bastion.findings import Report
from bastion.report import render_html, render_json, render_markdown

__all__ = ["DemoResult", "run_demo"]

Say = Callable[[str], None]


@dataclass
class DemoResult:
    workdir: Path
    report: Path
    before: Report
    after: Report
    timings: dict[str, float] = field(default_factory=dict)


ATTACKS = ("hopskipjump-l2", "square-linf", "extraction-natural", "membership-loss")


def _options(
    data: Path,
    quick: bool,
    against: str | None,
    key: str | None,
    attack_keys: tuple[str, ...] = (),
) -> AuditOptions:
    return AuditOptions(
        data=data,
        attacks=ATTACKS,
        budget=6_000 if quick else 20_000,
        point_budget=150 if quick else 400,
        points=5 if quick else 12,
        time_limit_s=45.0 if quick else 90.0,
        api_key=key,
        attack_keys=attack_keys,
        against=against,
    )


def run_demo(workdir: Path, quick: bool = False, say: Say = print) -> DemoResult:
    from bastion.demo.guarding import issue_key, write_guard_config

    timings: dict[str, float] = {}
    t0 = time.monotonic()

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - t0 - sum(timings.values()), 2)

    workdir.mkdir(parents=True, exist_ok=True)
    with Supervisor(workdir / "logs") as procs:
        say("1/6 training a digits classifier and serving it like a careless team would")
        model_url = procs.start("model-server", ["-m", "bastion.demo.model_server"])
        data = train()
        manifest = write_system(data, workdir, model_url)
        lap("setup")
        say(f"2/6 auditing the system described in {manifest}")
        before = audit(manifest, _options(workdir / "attacker-data.npz", quick, None, None))
        (workdir / "before.json").write_text(render_json(before), encoding="utf-8")
        lap("audit_before")
        say(f"3/6 {len(before.findings)} findings; deriving a guard config from them")
        guard_yaml = write_guard_config(before, manifest, workdir, data.x_train)
        key = issue_key(workdir, "demo-client")
        # The re-audit attacks as fresh principals, one per attack: a guard that blocked
        # the probing client must still stop each attack on its own merits.
        attack_keys = tuple(issue_key(workdir, f"demo-attacker-{i}") for i in range(len(ATTACKS)))
        lap("guard_init")
        say("4/6 starting the guard in front of the model server")
        guard_url = procs.start(
            "guard",
            [
                "-m",
                "bastion",
                "guard",
                "serve",
                "--config",
                str(guard_yaml),
                "--port",
                "0",
                "--announce",
            ],
        )
        lap("guard_start")
        say(f"5/6 auditing again, through the guard at {guard_url}")
        after = audit(
            manifest,
            _options(workdir / "attacker-data.npz", quick, guard_url, key, attack_keys),
        )
        (workdir / "after.json").write_text(render_json(after), encoding="utf-8")
        lap("audit_after")
    say("6/6 writing the before/after report")
    result = compare(before, after)
    report = workdir / "report.html"
    report.write_text(render_html(result), encoding="utf-8")
    (workdir / "report.md").write_text(render_markdown(result), encoding="utf-8")
    (workdir / "report.json").write_text(render_json(result), encoding="utf-8")
    lap("report")
    return DemoResult(workdir, report, before, result, timings)
