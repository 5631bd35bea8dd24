"""The evaluation report: one self-contained HTML page (plots embedded as PNG) plus a table.

Plots: queries to first detection per attack (each run a point, the median a
bar), and attack success with and without the detector per attack. Tables
give every figure with its sample size, so a reader can see what a rate rests on.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from bastion.detect.evaluation import EvalResult

__all__ = ["render_html", "summary_rows"]


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _plots(res: EvalResult) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res.rows
    names = [r["attack"] for r in rows]
    out = []
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for k, r in enumerate(rows):
        q = r["queries_to_detection"]
        ax.scatter([k] * len(q), q, s=14, alpha=0.7, color="tab:blue")
        if r["queries_to_detection_median"] is not None:
            ax.hlines(r["queries_to_detection_median"], k - 0.3, k + 0.3, color="black")
    ax.axhline(10, ls="--", color="tab:red", lw=1, label="target median 10")
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("queries to first detection")
    ax.legend(loc="upper left")
    out.append(_png(fig))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["success_without_detector"] or 0 for r in rows], 0.4,
           label="no detector", color="tab:gray")  # fmt: skip
    ax.bar([i + 0.2 for i in x], [r["success_with_detector"] for r in rows], 0.4,
           label="detector and actions on", color="tab:green")  # fmt: skip
    ax.set_xticks(list(x), names, rotation=30, ha="right")
    ax.set_ylabel("attack success rate")
    ax.set_ylim(0, 1)
    ax.legend()
    out.append(_png(fig))
    plt.close(fig)
    return out


def summary_rows(results: list[EvalResult]) -> list[list[str]]:
    """One line per (task, configuration, attack) — the table printed by the CLI, too."""
    table = []
    for res in results:
        for r in res.rows:
            med = r["queries_to_detection_median"]
            p90 = r["queries_to_detection_p90"]
            base = r["success_without_detector"]
            table.append(
                [
                    res.task,
                    res.configuration,
                    f"{r['attack']} ({r['source']})",
                    f"{r['detected']}/{r['runs']}",
                    "-" if med is None else f"{med:g}",
                    "-" if p90 is None else f"{p90:g}",
                    f"{r['success_with_detector']:.0%}",
                    "-" if base is None else f"{base:.0%}",
                ]
            )
    return table


HEAD = ["task", "configuration", "attack", "detected", "q→det median", "q→det p90",
        "success (on)", "success (off)"]  # fmt: skip


def render_html(results: list[EvalResult], plan: dict[str, Any]) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>bastion detect eval</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:3px 6px;text-align:right}th{background:#eee}</style></head><body>",
        "<h1>Attack-in-progress detection: evaluation</h1>",
        f"<p>Plan: {esc(str(plan))}</p>",
        "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in HEAD) + "</tr>",
    ]
    for row in summary_rows(results):
        parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    parts.append("</table>")
    for res in results:
        parts.append(f"<h2>{esc(res.task)} — {esc(res.configuration)}</h2>")
        parts.append(
            f"<p>Benign principals flagged: {res.benign_flagged} of {res.benign_principals} "
            f"({res.fpr:.2%}) over {res.benign_queries} queries; after the attacks, "
            f"{res.benign_after_flagged} of {res.benign_after_principals} other benign "
            "principals; detector cost "
            f"{res.cost_ms:.3f} ms per query; memory per principal "
            f"{res.memory_bytes_per_principal / 1024:.0f} KiB.</p>"
        )
        for img in _plots(res):
            parts.append(f"<img alt='plot' src='data:image/png;base64,{img}'>")
        if res.extraction:
            parts.append(
                "<table><tr><th>extraction strategy</th><th>detected at query</th>"
                "<th>fidelity at detection</th><th>queries to fidelity 0.8</th></tr>"
            )
            for e in res.extraction:
                parts.append(
                    f"<tr><td>{esc(e['strategy'])}</td><td>{e['detected_at']}</td>"
                    f"<td>{e['fidelity_at_detection']:.2f}</td>"
                    f"<td>{e['queries_to_fidelity_0.8']}</td></tr>"
                )
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
