"""YAML files written by users, validated by pydantic, with errors at file:line:column.

PyYAML's safe loader forgets positions and silently keeps the last of two
duplicate keys. We compose the node tree first to keep the positions (for error
messages, and for findings that point at a manifest line) and to reject
duplicate keys (the author meant one of them). Manifests, threat catalogues and
guard configurations all load through here.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bastion.errors import ConfigError

__all__ = ["LineMap", "Loc", "compose_lines", "read_text", "resolve", "validate"]

Loc = tuple[str | int, ...]
LineMap = dict[Loc, tuple[int, int]]
M = TypeVar("M", bound=BaseModel)


def read_text(path: str | Path, error: type[ConfigError] = ConfigError, what: str = "file") -> str:
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} not found", path=str(p), hint="check the path") from None
    except IsADirectoryError:
        raise error(f"{what} is a directory", path=str(p), hint="name a YAML file") from None
    except UnicodeDecodeError as exc:
        raise error(
            f"not UTF-8 text (byte {exc.start})", path=str(p), hint="save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}", path=str(p)) from None


def compose_lines(
    text: str, path: str, error: type[ConfigError] = ConfigError
) -> tuple[Any, LineMap]:
    """Parse YAML safely; return the data and a map from key paths to (line, column)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or "invalid YAML").strip()
        raise error(
            f"not valid YAML: {problem}",
            path=path,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            hint="check indentation and quoting near this position",
        ) from None
    except yaml.YAMLError as exc:
        raise error(f"not valid YAML: {exc}", path=path, line=1) from None
    lines: LineMap = {}
    if root is not None:
        _walk(root, (), lines, path, error)
    return data, lines


def _walk(node: yaml.Node, loc: Loc, lines: LineMap, path: str, error: type[ConfigError]) -> None:
    lines[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in seen:
                raise error(
                    f"duplicate key {key!r}",
                    path=path,
                    line=at[0],
                    column=at[1],
                    hint="YAML would silently keep only the last one; remove or merge them",
                )
            seen.add(key)
            lines[(*loc, key, "__key__")] = at
            _walk(value_node, (*loc, key), lines, path, error)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*loc, i), lines, path, error)


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def resolve(loc: Loc, lines: LineMap, data: Any) -> tuple[int, int] | None:
    """Follow a pydantic error location through the YAML to a (line, column).

    Pydantic inserts the discriminator value (e.g. 'model') into locations inside
    a tagged union, and the class name into plain unions; the YAML has no such
    level, so a component that is not a key of the current mapping is skipped.
    """
    walked: Loc = ()
    node = data
    for part in loc:
        if _has(node, part):
            walked = (*walked, part)
            node = node[part]
    return lines.get((*walked, "__key__")) or lines.get(walked)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out += [m for m in _models_in(arg) if m not in out]
    return out


def _field(model: type[BaseModel], name: str) -> Any:
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias):
            return info
    return None


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class owning the mapping at `loc`, following union tags."""
    current: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        models = _models_in(current)
        if len(models) > 1:
            tagged = [m for m in models if _tag_of(m, str(part))]
            if tagged:
                current = tagged[0]
                continue
            return None
        if not models:
            return None
        info = _field(models[0], str(part))
        if info is None:
            return None
        current = info.annotation
    models = _models_in(current)
    return models[0] if len(models) == 1 else None


def _tag_of(model: type[BaseModel], tag: str) -> bool:
    info = model.model_fields.get("type")
    return info is not None and tag in typing.get_args(info.annotation)


def _explain(root: type[BaseModel], err: Any) -> tuple[str, str | None]:
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        owner = _model_at(root, loc[:-1])
        names = set()
        if owner is not None:
            for name, info in owner.model_fields.items():
                names.add(info.alias or name)
        near = difflib.get_close_matches(key, sorted(names), n=1)
        if near:
            return f"unknown key {key!r}", f"did you mean {near[0]!r}?"
        allowed = ", ".join(sorted(names))
        return f"unknown key {key!r}", f"allowed keys: {allowed}" if allowed else "remove it"
    if kind == "missing":
        return f"missing required key {loc[-1]!r}", "add it"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        expected = str(ctx.get("expected_tags", "")).replace("'", "")
        near = difflib.get_close_matches(str(ctx.get("tag")), expected.split(", "), n=1)
        hint = f"did you mean {near[0]!r}?" if near else f"use one of: {expected}"
        return f"unknown type {ctx.get('tag')!r}", hint
    if kind == "union_tag_not_found":
        return "no 'type' given", "add 'type:' with one of the allowed types"
    return str(err["msg"]), None


def validate(
    model: type[M], data: Any, lines: LineMap, path: str, error: type[ConfigError] = ConfigError
) -> M:
    """Validate data against a model; the first problem becomes a located ConfigError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        message, hint = _explain(model, first)
        loc = tuple(first["loc"])
        if first["type"] == "union_tag_invalid":
            loc = (*loc, "type")
        pos = resolve(loc, lines, data)
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise error(
            message + more,
            path=path,
            line=pos[0] if pos else None,
            column=pos[1] if pos else None,
            field=".".join(str(p) for p in loc) or None,
            hint=hint,
        ) from None
