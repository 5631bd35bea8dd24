"""The scanner's rule catalogue and verdicts, kept in one table so ids stay stable.

Every observation the scanner makes is an `Issue` naming one rule here; the
rule decides its severity and how it moves the file's verdict. A gate reads the
verdict: `malicious` (something executes), `suspicious` (something a benign
model never does), `could-not-scan` (part of the file was not read, so it is
never called clean), `clean`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bastion.findings import Severity

__all__ = ["RULES", "Issue", "Rule", "Verdict", "worst"]


class Verdict(StrEnum):
    CLEAN = "clean"
    COULD_NOT_SCAN = "could-not-scan"
    SUSPICIOUS = "suspicious"
    MALICIOUS = "malicious"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {
    Verdict.CLEAN: 0,
    Verdict.COULD_NOT_SCAN: 1,
    Verdict.SUSPICIOUS: 2,
    Verdict.MALICIOUS: 3,
}


def worst(verdicts: list[Verdict] | tuple[Verdict, ...]) -> Verdict:
    return max(verdicts, key=lambda v: v.rank, default=Verdict.CLEAN)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    effect: Verdict  # what the rule does to the verdict of the file it is found in
    cwe: tuple[str, ...] = ("CWE-502",)
    atlas: tuple[str, ...] = ("AML.T0010",)
    mitigations: tuple[str, ...] = ("verify-artifacts",)


_S, _M, _C, _N = Verdict.SUSPICIOUS, Verdict.MALICIOUS, Verdict.COULD_NOT_SCAN, Verdict.CLEAN
_SEV = Severity

_TABLE = [
    Rule("S100", "Model artifact scanned", _SEV.INFO, _N, cwe=(), mitigations=()),
    Rule("S101", "Pickle imports a code-execution gadget", _SEV.CRITICAL, _M),
    Rule("S102", "Pickle imports a callable outside the framework allow-lists", _SEV.MEDIUM, _S),
    Rule("S103", "Pickle import whose name is computed at load time", _SEV.HIGH, _S),
    Rule("S104", "Pickle calls a callable produced by another call", _SEV.HIGH, _S),
    Rule("S105", "Pickle passes data to a deserialiser that could not be analysed", _SEV.HIGH, _S),
    Rule("S106", "Malformed pickle: the loader runs its prefix, then fails", _SEV.MEDIUM, _S),
    Rule("S107", "Data after the end of the pickle stream", _SEV.LOW, _N),
    Rule("S108", "Pickle mutates an imported class or module (BUILD on a global)", _SEV.HIGH, _S),
    Rule("S109", "Array stored as a pickle (needs allow_pickle)", _SEV.LOW, _N),
    Rule("S201", "Archive has duplicate member names", _SEV.MEDIUM, _S, cwe=("CWE-436",)),
    Rule(
        "S202",
        "Archive member name differs between local and central headers",
        _SEV.MEDIUM,
        _S,
        cwe=("CWE-436",),
    ),
    Rule("S203", "Archive member fails its CRC check", _SEV.MEDIUM, _S, cwe=("CWE-436",)),
    Rule(
        "S204", "Archive holds data its directory does not list", _SEV.MEDIUM, _S, cwe=("CWE-436",)
    ),
    Rule("S205", "Archive member path escapes the extraction root", _SEV.HIGH, _S, cwe=("CWE-22",)),
    Rule(
        "S206",
        "Scan bound exceeded (size, members, depth or ratio)",
        _SEV.HIGH,
        _C,
        cwe=("CWE-409",),
    ),
    Rule(
        "S207", "File is valid as two formats at once (polyglot)", _SEV.MEDIUM, _S, cwe=("CWE-436",)
    ),
    Rule("S208", "Archive member cannot be read (encryption or compression)", _SEV.HIGH, _C),
    Rule(
        "S209", "Archive member flags disagree with its content", _SEV.MEDIUM, _S, cwe=("CWE-436",)
    ),
    Rule(
        "S210",
        "PyTorch archive has several roots; readers pick different ones",
        _SEV.MEDIUM,
        _S,
        cwe=("CWE-436",),
    ),
    Rule("S301", "Model file is corrupt or truncated", _SEV.HIGH, _C),
    Rule("S302", "Safetensors header is invalid", _SEV.MEDIUM, _S, cwe=("CWE-20",)),
    Rule(
        "S303",
        "Keras model contains a Lambda layer (code on load)",
        _SEV.CRITICAL,
        _M,
        cwe=("CWE-94",),
    ),
    Rule(
        "S304",
        "Keras config names a module outside the allow-list",
        _SEV.MEDIUM,
        _S,
        cwe=("CWE-94",),
    ),
    Rule("S305", "ONNX model uses a custom operator domain", _SEV.MEDIUM, _S, cwe=("CWE-829",)),
    Rule(
        "S306",
        "ONNX external data path escapes the model directory",
        _SEV.HIGH,
        _S,
        cwe=("CWE-22",),
    ),
    Rule("S307", "Format recognised but not analysable here", _SEV.HIGH, _C, cwe=()),
    Rule(
        "S401",
        "Model shipped inside a client bundle is white-box",
        _SEV.MEDIUM,
        _N,
        cwe=("CWE-200",),
        atlas=("AML.T0044",),
        mitigations=("keep-models-server-side",),
    ),
    Rule("S501", "Artifact digest differs from the pinned sha256", _SEV.HIGH, _S, cwe=("CWE-354",)),
    Rule("S502", "Model signature does not verify", _SEV.HIGH, _S, cwe=("CWE-347",)),
    Rule("S503", "Artifact declared in the manifest is missing", _SEV.HIGH, _C, cwe=()),
    Rule("S504", "Model signature verified", _SEV.INFO, _N, cwe=(), mitigations=()),
    Rule(
        "S505", "Artifact content differs from its declared format", _SEV.HIGH, _S, cwe=("CWE-434",)
    ),
]

RULES: dict[str, Rule] = {r.id: r for r in _TABLE}


@dataclass(frozen=True)
class Issue:
    """One observation inside one artifact; `member` is the path inside its container chain."""

    rule: str
    message: str
    member: str | None = None
    key: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def effect(self) -> Verdict:
        return RULES[self.rule].effect
