"""verify: the same assessment before and after a mitigation, finding by finding.

Findings are matched on what they are about, not on where the endpoint lives:
the guarded system is reached at a different address than the bare model, so an
endpoint subject is compared by its path. Every measured number that moved is
reported with both values, so "reduced" always comes with its evidence.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from bastion.findings import Change, ChangeStatus, Comparison, Finding, Report, SubjectKind

__all__ = ["compare", "match_key"]


def match_key(f: Finding) -> str:
    subject = f.subject.id
    if f.subject.kind is SubjectKind.ENDPOINT and "://" in subject:
        parts = urlsplit(subject)
        subject = parts.path or "/"
    return "\x1f".join((f.rule_id, f.subject.kind.value, subject, f.subject.member or "", f.key))


def _deltas(before: Finding, after: Finding) -> dict[str, tuple[Any, Any]]:
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(before.evidence) | set(after.evidence)):
        a, b = before.evidence.get(key), after.evidence.get(key)
        if a != b:
            out[key] = (a, b)
    return out


def _change(before: Finding | None, after: Finding | None, key: str) -> Change:
    ref = after or before
    assert ref is not None
    if before is None:
        status = ChangeStatus.NEW
    elif after is None:
        status = ChangeStatus.RESOLVED
    elif after.severity.rank < before.severity.rank:
        status = ChangeStatus.REDUCED
    elif after.severity.rank > before.severity.rank:
        status = ChangeStatus.WORSENED
    else:
        status = ChangeStatus.UNCHANGED
    return Change(
        match=key,
        rule_id=ref.rule_id,
        title=ref.title,
        subject=ref.subject.id
        if ref.subject.kind is SubjectKind.ENDPOINT
        else (ref.subject.name or ref.subject.id),
        status=status,
        before=before.severity if before else None,
        after=after.severity if after else None,
        deltas=_deltas(before, after) if before and after else {},
    )


def compare(before: Report, after: Report) -> Report:
    """The after-report, carrying a finding-by-finding comparison with the before-report."""
    old = {match_key(f): f for f in before.findings}
    new = {match_key(f): f for f in after.findings}
    changes = [_change(old.get(k), new.get(k), k) for k in dict.fromkeys([*old, *new])]
    order = {s: i for i, s in enumerate(ChangeStatus)}
    changes.sort(key=lambda c: (order[c.status], c.rule_id, c.subject))
    comparison = Comparison(before=before.run, after=after.run, changes=tuple(changes))
    return after.model_copy(
        update={"comparison": comparison, "system": after.system or before.system}
    )
