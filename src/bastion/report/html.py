"""One self-contained HTML file: no network, no scripts from elsewhere, autoescaped."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from jinja2 import Environment, select_autoescape

from bastion.findings import Report, Severity
from bastion.report.context import by_subject, mitigation_title, risk_matrix, worst_by_subject
from bastion.report.diagram import SEVERITY_COLOUR, render_diagram
from bastion.report.plots import comparison_chart, series_charts

__all__ = ["render_html"]


def _environment() -> Environment:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["as_json"] = lambda v: v if isinstance(v, str) else json.dumps(v)
    env.filters["zip"] = lambda a, b: list(zip(a, b, strict=False))
    env.globals["mitigation_title"] = mitigation_title
    env.globals["colour"] = SEVERITY_COLOUR
    return env


def _template_text() -> str:
    return resources.files("bastion.report").joinpath("templates/report.html.j2").read_text("utf-8")


def render_html(report: Report) -> str:
    from markupsafe import Markup

    ordered = report.sorted()
    diagram = None
    if report.system:
        diagram = Markup(render_diagram(report.system, worst_by_subject(report)))
    names: dict[str, Any] = {}
    for el in (report.system or {}).get("elements", []):
        names[el["id"]] = el.get("name") or el["id"]
    template = _environment().from_string(_template_text())
    return template.render(
        report=ordered,
        run=report.run,
        counts=report.counts(),
        severities=[s.value for s in Severity],
        groups=by_subject(ordered),
        names=names,
        diagram=diagram,
        top=[f for f in ordered.findings if f.severity.rank >= 3][:5],
        series=report.series,
        charts=series_charts(report.series),
        matrix=risk_matrix(report),
        comparison=report.comparison,
        before_high=sum(
            1
            for c in (report.comparison.changes if report.comparison else ())
            if c.before is not None and c.before.rank >= 3
        ),
        after_high=sum(
            1
            for c in (report.comparison.changes if report.comparison else ())
            if c.after is not None and c.after.rank >= 3
        ),
        comparison_uri=comparison_chart(report.comparison) if report.comparison else None,
    )
