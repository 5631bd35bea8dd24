"""Read a manifest from YAML; report any problem at its file:line:column."""

from __future__ import annotations

from pathlib import Path

from bastion.errors import ManifestError
from bastion.manifest.system import Problem, SystemManifest
from bastion.yamlsource import LineMap, compose_lines, read_text, resolve, validate

__all__ = ["load_manifest", "parse_manifest"]


def parse_manifest(text: str, path: str = "<manifest>") -> SystemManifest:
    data, lines = compose_lines(text, path, ManifestError)
    if not isinstance(data, dict):
        raise ManifestError(
            "a manifest must be a YAML mapping with 'system' and 'elements'",
            path=path,
            line=1,
            column=1,
            hint="see examples/ or `bastion manifest schema`",
        )
    manifest = validate(SystemManifest, data, lines, path, ManifestError)
    manifest.attach_source(path, lines)
    problems = list(manifest.problems())
    if problems:
        raise _problem_error(problems, lines, data, path)
    return manifest


def _problem_error(
    problems: list[Problem], lines: LineMap, data: object, path: str
) -> ManifestError:
    first = problems[0]
    pos = resolve(first.loc, lines, data)
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return ManifestError(
        first.message + more,
        path=path,
        line=pos[0] if pos else None,
        column=pos[1] if pos else None,
        field=".".join(str(p) for p in first.loc),
        hint=first.hint,
    )


def load_manifest(path: str | Path) -> SystemManifest:
    text = read_text(path, ManifestError, "manifest")
    return parse_manifest(text, str(path))
