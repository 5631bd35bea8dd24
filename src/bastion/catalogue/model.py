"""Threats and mitigations as data: what can go wrong, when, and what to do about it.

The catalogue is YAML shipped in the package so that reviewers can read and
extend it without reading code; each threat's condition is declarative (see
`bastion.threatmodel.conditions`), never evaluated as Python.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bastion.catalogue.conditions import Condition
from bastion.findings import Severity

__all__ = ["Catalogue", "Mitigation", "MitigationAdvice", "Tags", "Threat"]

SubjectType = Literal[
    "model",
    "endpoint",
    "preprocessor",
    "postprocessor",
    "dataset",
    "training_job",
    "feature_store",
    "model_registry",
    "client_app",
    "data_provider",
    "human_reviewer",
    "decision",
    "logging",
    "actor",
    "service",
    "flow",
    "system",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Tags(_Strict):
    atlas: tuple[str, ...] = ()
    owasp: tuple[str, ...] = ()
    stride: tuple[
        Literal[
            "spoofing",
            "tampering",
            "repudiation",
            "information_disclosure",
            "denial_of_service",
            "elevation_of_privilege",
        ],
        ...,
    ] = ()
    cia: tuple[Literal["confidentiality", "integrity", "availability"], ...] = ()
    cwe: tuple[str, ...] = ()


class MitigationAdvice(_Strict):
    id: str
    advice: str = Field(min_length=10)


class Threat(_Strict):
    id: str = Field(pattern=r"^[A-Z][A-Z0-9]*-?[0-9]{2,}$")
    title: str
    description: str = Field(min_length=40)
    category: str
    severity: Severity
    likelihood: Literal["low", "medium", "high"]
    applies_to: tuple[SubjectType, ...] = Field(min_length=1)
    when: Condition
    message: str = Field(description="Shown per finding; {name} is the subject's name.")
    escalate_with_impact: bool = Field(
        default=False,
        description="Raise severity to the highest impact of the decisions this subject drives.",
    )
    tags: Tags = Field(default_factory=Tags)
    mitigations: tuple[MitigationAdvice, ...] = Field(min_length=1)


class Mitigation(_Strict):
    id: str = Field(pattern=r"^M[0-9]{2,}$")
    title: str
    description: str = Field(min_length=20)
    atlas: tuple[str, ...] = ()
    bastion: str | None = Field(
        default=None, description="Which bastion capability implements or checks it."
    )


class Catalogue(_Strict):
    threats: tuple[Threat, ...] = ()
    mitigations: tuple[Mitigation, ...] = ()

    def threat(self, threat_id: str) -> Threat:
        for t in self.threats:
            if t.id == threat_id:
                return t
        raise KeyError(threat_id)

    def mitigation(self, mitigation_id: str) -> Mitigation:
        for m in self.mitigations:
            if m.id == mitigation_id:
                return m
        raise KeyError(mitigation_id)

    def merged(self, other: Catalogue) -> Catalogue:
        return Catalogue(
            threats=self.threats + other.threats, mitigations=self.mitigations + other.mitigations
        )
