"""`bastion scan SYSTEM.yaml`: scan the artifacts a manifest declares and check their pins.

A manifest's model elements name their artifact (path, format, sha256) and its
client-app elements their bundle; both are scanned, and a declared sha256 that
the file no longer matches is a finding at the manifest line that pins it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.errors import UsageError
from bastion.findings import Confidence, Finding, Location, References, Subject, SubjectKind
from bastion.scan.rules import RULES
from bastion.scan.scanner import FileScan

__all__ = ["Declared", "expand_manifests", "format_mismatches", "is_manifest"]

# What the scanner calls a format -> the manifest's ArtifactFormat value.
_AS_DECLARED = {
    "pickle": "pickle",
    "joblib": "joblib",
    "pytorch": "torch",
    "pytorch-legacy": "torch",
    "pytorch-legacy-tar": "torch",
    "numpy": "numpy",
    "numpy-npz": "numpy",
    "keras": "keras",
    "hdf5": "h5",
    "onnx": "onnx",
    "safetensors": "safetensors",
    "tflite": "tflite",
    "gguf": "gguf",
}


@dataclass(frozen=True)
class Declared:
    """An artifact a manifest declares: which element, which format, where in the YAML."""

    element: str
    format: str
    location: Location | None


def is_manifest(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml") and path.is_file()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _pin_finding(
    rule_id: str, message: str, artifact: Path, where: Any, ev: dict[str, Any]
) -> Finding:
    rule = RULES[rule_id]
    location = where if isinstance(where, Location) else Location(path=str(artifact))
    return Finding(
        rule_id=rule.id,
        title=rule.title,
        message=message,
        severity=rule.severity,
        confidence=Confidence.HIGH,
        analyser="scan",
        subject=Subject(
            kind=SubjectKind.FILE, id=str(artifact), name=artifact.name, location=location
        ),
        evidence=ev,
        references=References(atlas=rule.atlas, owasp=("ML06",), cwe=rule.cwe),
        mitigations=rule.mitigations,
        key="pin",
    )


def _artifacts(manifest: Any) -> list[tuple[str, str, str | None, str | None]]:
    """(element id, path, pinned sha256) for every model artifact and client bundle."""
    out: list[tuple[str, str, str | None, str | None]] = []
    for element in getattr(manifest, "elements", []):
        artifact = getattr(element, "artifact", None)
        path = getattr(artifact, "path", None) if artifact is not None else None
        if isinstance(path, str | Path):
            fmt = getattr(artifact, "format", None)
            pin = getattr(artifact, "sha256", None)
            out.append((element.id, str(path), pin, str(fmt.value if fmt is not None else "")))
        bundle = getattr(element, "bundle", None)
        if isinstance(bundle, str | Path):
            out.append((element.id, str(bundle), None, None))
    return out


def expand_manifests(
    paths: Sequence[Path], declared: dict[str, Declared] | None = None
) -> tuple[list[Path], list[Finding]]:
    """Replace each manifest by the artifacts it declares; check their sha256 pins.

    `declared`, when given, is filled with each artifact's declared format so that
    `format_mismatches` can compare it with what the scan found.
    """
    targets: list[Path] = []
    findings: list[Finding] = []
    for path in paths:
        if not is_manifest(path):
            targets.append(path)
            continue
        try:
            from bastion.manifest import load_manifest  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise UsageError(
                f"{path}: scanning a system manifest needs bastion.manifest",
                hint="scan the artifact paths directly",
            ) from None
        manifest = load_manifest(path)
        for element_id, raw, pinned, fmt in _artifacts(manifest):
            artifact = (path.parent / raw).resolve() if not Path(raw).is_absolute() else Path(raw)
            where = getattr(manifest, "location_of", lambda _e: None)(element_id)
            ev: dict[str, Any] = {"element": element_id, "declared_path": raw}
            if not artifact.exists():
                msg = f"element {element_id!r} declares {raw!r}, which does not exist"
                findings.append(_pin_finding("S503", msg, artifact, where, ev))
                continue
            targets.append(artifact)
            if declared is not None and fmt:
                declared[str(artifact)] = Declared(element_id, fmt, where)
            if pinned and artifact.is_file():
                actual = _sha256(artifact)
                if actual.lower() != str(pinned).lower():
                    ev |= {"pinned_sha256": pinned, "actual_sha256": actual}
                    msg = f"element {element_id!r} pins sha256 {pinned}, the file has {actual}"
                    findings.append(_pin_finding("S501", msg, artifact, where, ev))
    return targets, findings


def format_mismatches(declared: dict[str, Declared], scans: Sequence[FileScan]) -> list[Finding]:
    """A file whose content is another format than the manifest says (a "safetensors" pickle)."""
    out: list[Finding] = []
    for scan in scans:
        want = declared.get(scan.path)
        whole = next((a for a in scan.artifacts if a.member is None), None)
        if want is None or want.format in ("other", "savedmodel", "coreml", "torchscript"):
            continue
        found = _AS_DECLARED.get(whole.format.split("+")[0], whole.format) if whole else None
        if found == want.format:
            continue
        ev = {"element": want.element, "declared_format": want.format, "content_format": found}
        msg = (
            f"element {want.element!r} declares a {want.format} artifact; its content is "
            f"{found or 'no model format bastion recognises'}"
        )
        out.append(_pin_finding("S505", msg, Path(scan.path), want.location, ev))
    return out
