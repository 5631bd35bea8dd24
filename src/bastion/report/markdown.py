"""Markdown for pull requests, wikis and tickets."""

from __future__ import annotations

import json

from bastion.findings import Finding, Report
from bastion.report.context import mitigation_title

__all__ = ["render_markdown"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _finding(f: Finding) -> list[str]:
    where = f.subject.location
    at = f" (`{where.path}:{where.line}`)" if where and where.line else ""
    member = f" → `{f.subject.member}`" if f.subject.member else ""
    lines = [
        f"### {f.rule_id} · {f.title}",
        "",
        f"**{f.severity.value}** · confidence {f.confidence.value} · {f.analyser} · "
        f"subject `{f.subject.id}`{member}{at}",
        "",
        f.message,
        "",
    ]
    if f.evidence:
        lines += ["| evidence | value |", "|---|---|"]
        for key, value in f.evidence.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            lines.append(f"| {_cell(key)} | {_cell(str(shown))} |")
        lines.append("")
    refs = f.references.all()
    if refs:
        lines += ["References: " + ", ".join(refs), ""]
    if f.mitigations:
        lines.append("Mitigations:")
        lines += [f"- {m}: {mitigation_title(m)}" for m in f.mitigations]
        lines.append("")
    return lines


def _comparison(report: Report) -> list[str]:
    comp = report.comparison
    assert comp is not None
    counts = comp.counts()
    out = [
        "## Before and after",
        "",
        " · ".join(f"{n} {status}" for status, n in counts.items()),
        "",
        "| status | rule | subject | severity | what changed |",
        "|---|---|---|---|---|",
    ]
    for c in comp.changes:
        sev = f"{c.before.value if c.before else '—'} → {c.after.value if c.after else '—'}"
        moved = "; ".join(
            f"{k}: {json.dumps(a)} → {json.dumps(b)}" for k, (a, b) in c.deltas.items()
        )
        out.append(
            f"| {c.status.value} | {c.rule_id} | {_cell(c.subject)} | {sev} | {_cell(moved)} |"
        )
    return [*out, ""]


def render_markdown(report: Report) -> str:
    run = report.run
    counts = report.counts()
    out = [
        f"# bastion report: {run.subject or 'assessment'}",
        "",
        f"bastion {run.version} · `{run.command}` · {run.started:%Y-%m-%d %H:%M UTC} · "
        f"analysers: {', '.join(run.analysers) or '-'}",
        "",
        "| severity | findings |",
        "|---|---|",
        *[f"| {sev} | {n} |" for sev, n in counts.items()],
        "",
    ]
    if run.suppressed:
        out += [f"{run.suppressed} findings suppressed by declared assumptions.", ""]
    if report.comparison is not None:
        out += _comparison(report)
    ordered = report.sorted().findings
    if not ordered:
        out += ["No findings.", ""]
        return "\n".join(out)
    out += ["| severity | rule | subject | title |", "|---|---|---|---|"]
    out += [
        f"| {f.severity.value} | {f.rule_id} | {_cell(f.subject.id)} | {_cell(f.title)} |"
        for f in ordered
    ]
    out += ["", "## Findings", ""]
    for f in ordered:
        out += _finding(f)
    return "\n".join(out)
