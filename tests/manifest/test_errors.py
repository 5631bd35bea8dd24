"""Malformed manifests fail with one line naming file:line:col and how to fix it, exit 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bastion.errors import ManifestError
from bastion.manifest import load_manifest

GOOD = """\
version: 1
system: {name: s}
elements:
  - {id: user, type: actor}
  - id: clf
    type: model
    output: {kind: label}
flows:
  - {from: user, to: clf, carries: user_input}
boundaries:
  - {id: outer, trust: untrusted, contains: [user]}
  - {id: inner, trust: internal, parent: outer, contains: [clf]}
"""

# name → (manifest text, expected line, substring of the message)
BAD: dict[str, tuple[str, int, str]] = {
    "unknown key": (
        GOOD.replace("    output: {kind: label}", "    outptu: {kind: label}"),
        7,
        "did you mean 'output'",
    ),
    "wrong type": (
        GOOD.replace("output: {kind: label}", "output: {kind: label, decimals: many}"),
        7,
        "decimals",
    ),
    "bad enum": (GOOD.replace("{kind: label}", "{kind: probabilities}"), 7, "kind"),
    "dangling flow": (
        GOOD.replace("to: clf, carries", "to: clff, carries"),
        9,
        "did you mean 'clf'",
    ),
    "duplicate id": (
        GOOD.replace("{id: user, type: actor}", "{id: clf, type: actor}").replace(
            "from: user", "from: clf"
        ),
        5,
        "duplicate id 'clf'",
    ),
    "boundary cycle": (
        GOOD.replace(
            "{id: outer, trust: untrusted,", "{id: outer, trust: untrusted, parent: inner,"
        ),
        11,
        "cycle",
    ),
    "not yaml": ("version: 1\nsystem: {name: s\nelements: []\n", 3, "not valid YAML"),
    "duplicate key": (
        GOOD.replace("version: 1\n", "version: 1\nversion: 1\n"),
        2,
        "duplicate key 'version'",
    ),
    "unknown element type": (GOOD.replace("type: model", "type: modle"), 6, "modle"),
    "missing required": (
        GOOD.replace("system: {name: s}", "system: {owner: s}"),
        2,
        "missing required key 'name'",
    ),
    "not a mapping": ("- just\n- a list\n", 1, "must be a YAML mapping"),
    "unknown parent": (
        GOOD.replace("parent: outer", "parent: outre"),
        12,
        "parent boundary 'outre'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_manifest_error_names_the_line(case: str, tmp_path: Path) -> None:
    text, line, needle = BAD[case]
    path = tmp_path / "system.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}"), message
    assert needle in message
    assert "\n" not in message


def test_good_manifest_loads(tmp_path: Path) -> None:
    path = tmp_path / "system.yaml"
    path.write_text(GOOD)
    manifest = load_manifest(path)
    assert [e.id for e in manifest.elements] == ["user", "clf"]
    assert manifest.location_of("clf") is not None
    assert manifest.location_of("clf").line == 5  # type: ignore[union-attr]


@pytest.mark.parametrize("case", sorted(BAD))
def test_cli_exit_2_with_one_line(case: str, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    text, line, _ = BAD[case]
    path = tmp_path / "system.yaml"
    path.write_text(text)
    commands = [["manifest", "validate", str(path)]]
    if case in ("unknown key", "dangling flow"):
        commands.append(["threats", str(path)])
    for args in commands:
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, proc.stderr
        assert re.search(rf"system\.yaml:{line}:\d+", lines[0]), lines[0]
        assert proc.stdout == ""


def test_missing_file_is_a_usage_error(run_cli) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli("threats", "does/not/exist.yaml")
    assert proc.returncode == 2
    assert "not found" in proc.stderr and "Traceback" not in proc.stderr
