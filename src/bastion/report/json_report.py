"""Canonical JSON: the Report exactly, so `Report.from_json` reads it back unchanged."""

from __future__ import annotations

from bastion.findings import Report

__all__ = ["render_json"]


def render_json(report: Report) -> str:
    return report.to_json()
