"""One registry per capability: built-ins by name, plugins by entry point, clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bastion.errors import PluginError
from bastion.registry import Registry, registry


def test_builtin_reporters_resolve() -> None:
    reporters = registry("reporters")
    assert {"json", "md", "html", "sarif"} <= set(reporters.names())
    assert callable(reporters.get("sarif"))


def test_unknown_names_are_usage_errors() -> None:
    with pytest.raises(PluginError, match="unknown reporter 'pdf'") as info:
        registry("reporters").get("pdf")
    assert info.value.exit_code == 2
    with pytest.raises(PluginError, match="unknown capability"):
        registry("gadgets")


def test_entry_point_plugins_are_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party package declares `bastion.reporters` → it shows up by name."""
    (tmp_path / "acme_report.py").write_text("def render(report):\n    return 'ACME'\n")
    dist = tmp_path / "acme_report-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-report\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[bastion.reporters]\nacme = acme_report:render\njson = acme_report:render\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    fresh = Registry("reporters", {"json": "bastion.report.json_report:render_json"})
    assert "acme" in fresh.names()
    assert fresh.get("acme")(None) == "ACME"
    # a plugin cannot shadow a built-in
    assert fresh.get("json").__module__ == "bastion.report.json_report"
    sys.modules.pop("acme_report", None)


def test_broken_plugin_reference_is_explained() -> None:
    broken = Registry("reporters", {"bad": "bastion.no_such_module:thing"})
    with pytest.raises(PluginError, match="cannot load reporter 'bad'"):
        broken.get("bad")
