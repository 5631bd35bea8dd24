"""Plots for the HTML report, drawn with matplotlib and embedded as data URIs.

Embedding as `<img src="data:image/svg+xml;base64,...">` keeps each chart
isolated (no clashing SVG ids, no scripts) and the report a single offline
file. matplotlib is the `report` extra; without it the report shows tables.
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from typing import Any

from bastion.findings import Comparison, Series, Severity

__all__ = ["available", "comparison_chart", "series_charts"]

_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float = 6.4, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "bastion", "svg.fonttype": "none", "font.size": 10})
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    ax.grid(True, alpha=0.3)
    return fig, ax


def _encode(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def series_charts(series: tuple[Series, ...]) -> list[dict[str, str]]:
    """One chart per group of series (same group name = same axes)."""
    if not series or not available():
        return []
    groups: dict[str, list[Series]] = defaultdict(list)
    for s in series:
        groups[s.group or s.name].append(s)
    charts = []
    for title, members in groups.items():
        fig, ax = _figure()
        for i, s in enumerate(members):
            label = s.name + (f" (n={s.sample_size})" if s.sample_size else "")
            colour = _COLOURS[i % len(_COLOURS)]
            if s.kind == "bar":
                ax.bar([str(x) for x in s.x], s.y, color=colour, label=label)
            elif s.kind == "step":
                ax.step(s.x, s.y, where="post", color=colour, label=label)
            else:
                ax.plot(s.x, s.y, marker="o", markersize=3, color=colour, label=label)
            if s.kind == "roc":
                ax.plot([0, 1], [0, 1], linestyle="--", color="#999999", linewidth=1)
        ax.set_xlabel(members[0].x_label)
        ax.set_ylabel(members[0].y_label)
        ax.set_title(title)
        ax.legend(loc="best", fontsize=8)
        charts.append({"title": title, "uri": _encode(fig)})
    return charts


def comparison_chart(comparison: Comparison) -> str | None:
    """Findings per severity before and after, side by side."""
    if not available():
        return None
    severities = [s for s in Severity]
    before = [sum(1 for c in comparison.changes if c.before is s) for s in severities]
    after = [sum(1 for c in comparison.changes if c.after is s) for s in severities]
    fig, ax = _figure(6.4, 3.2)
    xs = range(len(severities))
    ax.bar([x - 0.2 for x in xs], before, width=0.4, label="before", color="#c62828")
    ax.bar([x + 0.2 for x in xs], after, width=0.4, label="after", color="#2e7d32")
    ax.set_xticks(list(xs), [s.value for s in severities])
    ax.set_ylabel("findings")
    ax.set_title("Findings by severity, before and after")
    ax.legend()
    return _encode(fig)
