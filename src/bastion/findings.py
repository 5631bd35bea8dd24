"""The one data model: every analyser yields `Finding`s, every reporter reads a `Report`.

Keeping a single, frozen, JSON-round-trippable type is what lets threat rules,
scanners, probes and attacks be compared, deduplicated, diffed before/after and
rendered by the same reporters. Evidence is structured (numbers, ids, sample
sizes), never prose alone, so a reviewer can check a claim rather than trust it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

__all__ = [
    "Change",
    "ChangeStatus",
    "Comparison",
    "Confidence",
    "EvidenceValue",
    "Finding",
    "Location",
    "References",
    "Report",
    "RunInfo",
    "Series",
    "Severity",
    "Subject",
    "SubjectKind",
]

EvidenceValue = Any  # JSON value: str | int | float | bool | None | list | dict


class Severity(StrEnum):
    """Ordered so that `--fail-on` and sorting can compare severities."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @property
    def security_severity(self) -> str:
        """GitHub code scanning buckets a 0-10 score into critical/high/medium/low."""
        return _SECURITY_SEVERITY[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r}; use one of: {names}") from None


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.0",
    Severity.INFO: "0.0",
}


class Confidence(StrEnum):
    """How sure the analyser is: rules over declarations are firm, measurements are high."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class SubjectKind(StrEnum):
    SYSTEM = "system"
    ELEMENT = "element"
    FLOW = "flow"
    BOUNDARY = "boundary"
    ENDPOINT = "endpoint"
    FILE = "file"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Location(_Frozen):
    """Where a human should look: a file (manifest, artifact) and optionally a line."""

    path: str
    line: int | None = None
    column: int | None = None


class Subject(_Frozen):
    """What a finding is about: a manifest element, a flow, an endpoint or a file.

    `member` is the path inside an archive or bundle when the subject is a file
    found inside another file.
    """

    kind: SubjectKind
    id: str
    name: str | None = None
    location: Location | None = None
    member: str | None = None


class References(_Frozen):
    atlas: tuple[str, ...] = ()
    owasp: tuple[str, ...] = ()
    cwe: tuple[str, ...] = ()

    def all(self) -> tuple[str, ...]:
        return self.atlas + self.owasp + self.cwe


class Finding(_Frozen):
    """One observation, with the evidence that supports it.

    The fingerprint ignores line numbers and wording so that a finding keeps its
    identity across edits of the manifest and across before/after runs.
    """

    rule_id: str
    title: str
    message: str
    severity: Severity
    confidence: Confidence = Confidence.MEDIUM
    analyser: str
    subject: Subject
    evidence: dict[str, EvidenceValue] = Field(default_factory=dict)
    references: References = Field(default_factory=References)
    mitigations: tuple[str, ...] = ()
    key: str = ""

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: Any) -> Any:
        # The fingerprint is derived; JSON carries it for consumers, and reading
        # it back must not trip `extra="forbid"`.
        if isinstance(data, dict) and "fingerprint" in data:
            data = {k: v for k, v in data.items() if k != "fingerprint"}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fingerprint(self) -> str:
        parts = [self.rule_id, self.subject.kind.value, self.subject.id]
        parts += [self.subject.member or "", self.key]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]

    def sort_key(self) -> tuple[int, str, str, str]:
        return (-self.severity.rank, self.rule_id, self.subject.id, self.key)


class Series(_Frozen):
    """A measured curve for a plot (success vs budget, fidelity vs queries, ...).

    `sample_size` states how many trials each point is measured over, so no
    plotted number stands without its n.
    """

    name: str
    x_label: str
    y_label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    sample_size: int | None = None
    kind: str = "line"
    group: str = ""


def _now() -> datetime:
    return datetime.now(UTC)


class RunInfo(_Frozen):
    tool: str = "bastion"
    version: str = ""
    command: str = ""
    started: datetime = Field(default_factory=_now)
    finished: datetime | None = None
    subject: str = ""
    analysers: tuple[str, ...] = ()
    suppressed: int = 0
    notes: tuple[str, ...] = ()


class ChangeStatus(StrEnum):
    """What a mitigation did to one finding, judged by re-running the same assessment."""

    RESOLVED = "resolved"
    REDUCED = "reduced"
    UNCHANGED = "unchanged"
    WORSENED = "worsened"
    NEW = "new"


class Change(_Frozen):
    """One finding before and after; `deltas` holds each measured value that moved."""

    match: str
    rule_id: str
    title: str
    subject: str
    status: ChangeStatus
    before: Severity | None = None
    after: Severity | None = None
    deltas: dict[str, tuple[EvidenceValue, EvidenceValue]] = Field(default_factory=dict)


class Comparison(_Frozen):
    before: RunInfo
    after: RunInfo
    changes: tuple[Change, ...] = ()

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in ChangeStatus}
        for c in self.changes:
            out[c.status.value] += 1
        return out


class Report(_Frozen):
    """Findings plus what reporters need to render them without re-running anything.

    `system` carries the validated manifest (as plain data) so the HTML reporter
    can draw the data-flow diagram while staying a pure function of the Report.
    """

    findings: tuple[Finding, ...] = ()
    run: RunInfo = Field(default_factory=RunInfo)
    series: tuple[Series, ...] = ()
    system: Annotated[dict[str, Any] | None, Field(default=None)] = None
    comparison: Comparison | None = None

    def sorted(self) -> Report:
        ordered = tuple(sorted(self.findings, key=Finding.sort_key))
        return self.model_copy(update={"findings": ordered})

    def worst(self) -> Severity | None:
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=lambda s: s.rank)

    def at_least(self, threshold: Severity) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity.at_least(threshold))

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> Report:
        return cls.model_validate_json(text)
