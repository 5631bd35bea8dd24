"""Reporters: pure functions of a Report → text (json, md, html, sarif)."""

from bastion.report.html import render_html
from bastion.report.json_report import render_json
from bastion.report.markdown import render_markdown
from bastion.report.sarif import render_sarif

__all__ = ["render_html", "render_json", "render_markdown", "render_sarif"]
