"""The syntax of threat conditions: a small declarative language — data, never `eval`.

A condition is one of:

* ``{attr: PATH, <op>: VALUE}`` with op in eq, ne, in, not_in, gt, gte, lt, lte,
  exists — PATH is a dotted attribute of the subject (``controls.rate_limit``,
  ``output.kind``) or a derived one (``trust``, ``exposed``, ``crosses_boundary``);
* ``{all: [...]}``, ``{any: [...]}``, ``{not: ...}``;
* ``{related: RELATION, where: COND, min: 1, max: N}`` — how many elements in a
  relation (upstream, decisions, trainers, endpoints, ...) satisfy ``where``.

This module only defines the syntax (so the catalogue can be validated without
the rule engine); `bastion.threatmodel.evaluation` gives it meaning.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "RELATIONS",
    "UNSET",
    "AllCond",
    "AnyCond",
    "AttrCond",
    "Condition",
    "NotCond",
    "RelatedCond",
]

RELATIONS = (
    "elements",
    "inputs",
    "outputs",
    "upstream",
    "downstream",
    "decisions",
    "models",
    "trainers",
    "training_sources",
    "endpoints",
    "bundles",
    "monitors",
    "registries",
    "source",
    "target",
    "flows_in",
    "flows_out",
)

_OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists")
UNSET = object()


class _Cond(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AttrCond(_Cond):
    attr: str
    eq: Any = UNSET
    ne: Any = UNSET
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_op(self) -> AttrCond:
        used = [op for op in _OPS if self._op_value(op) is not UNSET]
        if len(used) != 1:
            raise ValueError(f"attr condition needs exactly one of {', '.join(_OPS)}")
        return self

    def _op_value(self, op: str) -> Any:
        value = getattr(self, "in_" if op == "in" else op)
        if op in ("eq", "ne"):
            return value
        return UNSET if value is None else value

    def op(self) -> tuple[str, Any]:
        for name in _OPS:
            value = self._op_value(name)
            if value is not UNSET:
                return name, value
        raise AssertionError("validated to have one op")


class AllCond(_Cond):
    all: list[Condition]


class AnyCond(_Cond):
    any: list[Condition]


class NotCond(_Cond):
    not_: Condition = Field(alias="not")


class RelatedCond(_Cond):
    related: Literal[RELATIONS]  # type: ignore[valid-type]
    where: Condition | None = None
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @property
    def low(self) -> int:
        """At least one match by default; `max` alone (e.g. `max: 0`) means "at most"."""
        if self.min is not None:
            return self.min
        return 0 if self.max is not None else 1


Condition = AttrCond | AllCond | AnyCond | NotCond | RelatedCond
for _model in (AllCond, AnyCond, NotCond, RelatedCond):
    _model.model_rebuild()
