"""`guard.yaml`: the guard's configuration, validated strictly, with errors at file:line.

Unknown keys are errors (a misspelt `max_byte` must not silently disable a
limit). Pydantic reports *which* field is wrong; the YAML node marks say
*where* it is, so every error names the file, line and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from bastion.errors import ConfigError

__all__ = [
    "ArtifactPin",
    "AuditSpec",
    "ConfigSource",
    "GuardConfig",
    "InputSpec",
    "ModelSpec",
    "ProxySpec",
    "StoreSpec",
    "config_error",
    "load_config",
    "parse_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """One named input tensor; -1 in `shape` accepts any size (e.g. the batch)."""

    name: str = "input-0"
    shape: list[int] = Field(default_factory=lambda: [-1])
    dtype: str = "float32"
    min: float | None = None
    max: float | None = None
    allow_non_finite: bool = False


class ArtifactPin(_Strict):
    path: str
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


class ModelSpec(_Strict):
    name: str = "model"
    version: str = ""
    protocol: Literal["oip", "json"] = "oip"
    inputs: list[InputSpec] = Field(default_factory=list)
    classes: list[str] | None = None
    scores_output: str = "probabilities"
    label_output: str = "label"
    artifact: ArtifactPin | None = None


class StoreSpec(_Strict):
    kind: str = "sqlite"
    path: str = "guard-state.db"
    url: str | None = None
    prefix: str = "bastion"
    timeout_s: float = Field(default=0.5, gt=0)


class AuditSpec(_Strict):
    enabled: bool = True
    path: str = "guard-audit.jsonl"
    max_bytes: int = Field(default=64 * 1024 * 1024, gt=1024)
    fsync: bool = False


class ProxySpec(_Strict):
    upstream: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    predict_paths: list[str] = Field(default_factory=lambda: ["/predict"])
    review_path: str = "/guard/review"


class GuardConfig(_Strict):
    version: Literal[1] = 1
    model: ModelSpec = Field(default_factory=ModelSpec)
    store: StoreSpec = Field(default_factory=StoreSpec)
    audit: AuditSpec = Field(default_factory=AuditSpec)
    proxy: ProxySpec = Field(default_factory=ProxySpec)
    metrics: bool = True
    policies: list[dict[str, Any]] = Field(default_factory=list)
    _source: ConfigSource | None = PrivateAttr(default=None)

    @property
    def source(self) -> ConfigSource:
        return self._source or ConfigSource(None, None)

    @property
    def base_dir(self) -> Path:
        """Relative paths in the file are relative to the file, not the working directory."""
        return self.source.path.parent if self.source.path else Path.cwd()

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p


class ConfigSource:
    """The parsed YAML node tree, used only to turn a pydantic `loc` into a line."""

    def __init__(self, path: Path | None, node: yaml.Node | None) -> None:
        self.path = path
        self.node = node

    def locate(
        self, loc: tuple[int | str, ...], *, key: bool = False
    ) -> tuple[int | None, int | None]:
        """Line and column of the value at `loc` (or of its key, for unknown keys)."""
        node = self.node
        if node is None:
            return None, None
        for i, part in enumerate(loc):
            found = _child(node, part)
            if found is None:
                break
            key_node, value_node = found
            node = key_node if key and i == len(loc) - 1 and key_node is not None else value_node
        return node.start_mark.line + 1, node.start_mark.column + 1


def _child(node: yaml.Node, part: int | str) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                return k, v
    elif (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        return None, node.value[part]
    return None


def config_error(
    exc: ValidationError, source: ConfigSource, prefix: tuple[int | str, ...] = ()
) -> ConfigError:
    """The first validation error, placed at its line; the count of the others in the hint."""
    errors = exc.errors()
    first = errors[0]
    loc = prefix + tuple(first["loc"])
    line, column = source.locate(loc, key=first["type"] == "extra_forbidden")
    field = ".".join(str(p) for p in loc) or None
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key (check its spelling; allowed keys are in docs/guard.md)"
    more = len(errors) - 1
    return ConfigError(
        message,
        path=str(source.path) if source.path else None,
        line=line,
        column=column,
        field=field,
        hint=f"{more} more error(s) after fixing this one" if more else None,
    )


def parse_config(text: str, path: Path | None = None) -> GuardConfig:
    where = str(path) if path else None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            path=where,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    source = ConfigSource(path, node)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping", path=where, line=1)
    try:
        config = GuardConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, source) from None
    config._source = source
    return config


def load_config(path: Path | str) -> GuardConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read guard config: {exc.strerror}", path=str(p), hint="check the path"
        ) from None
    return parse_config(text, p)
