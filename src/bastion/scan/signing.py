"""Sign and verify models with OpenSSF model-signing, private-key mode (works offline).

A signature covers every file of a model directory (or the one file), so a
swapped weight file or an added pickle fails verification. Keys are PEM
elliptic-curve keys; `generate_keys` makes a P-256 pair for teams without a PKI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bastion.errors import ScanError, UsageError
from bastion.findings import (
    Confidence,
    Finding,
    Location,
    References,
    Report,
    RunInfo,
    Subject,
    SubjectKind,
)
from bastion.scan.rules import RULES

__all__ = ["default_signature", "generate_keys", "sign_model", "verify_report"]

_EXTRA = "pip install 'bastion-ml[sign]'"


def _model_signing() -> Any:
    try:
        import model_signing  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise UsageError("signing needs the model-signing package", hint=_EXTRA) from None
    return model_signing


def default_signature(model: Path) -> Path:
    return model / "model.sig" if model.is_dir() else model.with_name(model.name + ".sig")


def _hashing(ms: Any, model: Path, signature: Path) -> Any:
    config = ms.hashing.Config()
    if model.is_dir() and signature.resolve().is_relative_to(model.resolve()):
        config.set_ignored_paths(paths=[signature.resolve().relative_to(model.resolve())])
    return config


def _check_paths(model: Path, key: Path) -> None:
    if not model.exists():
        raise UsageError(f"{model}: no such model file or directory")
    if not key.is_file():
        raise UsageError(f"{key}: no such key file", hint="create one with `bastion keygen`")


def sign_model(model: Path, key: Path, signature: Path | None = None) -> Path:
    _check_paths(model, key)
    ms = _model_signing()
    sig = signature or default_signature(model)
    try:
        config = ms.signing.Config().use_elliptic_key_signer(private_key=key)
        config.set_hashing_config(_hashing(ms, model, sig)).sign(model, sig)
    except (ValueError, OSError, TypeError) as exc:
        raise ScanError(
            f"{model}: signing failed: {exc}", hint="is the key a PEM EC private key?"
        ) from exc
    return sig


def _finding(rule_id: str, model: Path, message: str, evidence: dict[str, Any]) -> Finding:
    rule = RULES[rule_id]
    return Finding(
        rule_id=rule.id,
        title=rule.title,
        message=message,
        severity=rule.severity,
        confidence=Confidence.HIGH,
        analyser="scan",
        subject=Subject(
            kind=SubjectKind.FILE,
            id=str(model),
            name=model.name,
            location=Location(path=str(model)),
        ),
        evidence=evidence,
        references=References(atlas=("AML.T0010.003",), owasp=("ML06",), cwe=rule.cwe),
        mitigations=rule.mitigations,
        key="signature",
    )


def verify_report(model: Path, key: Path, signature: Path | None = None) -> Report:
    """A report with one finding: verified (info) or not (high, with the reason)."""
    _check_paths(model, key)
    ms = _model_signing()
    sig = signature or default_signature(model)
    evidence: dict[str, Any] = {"signature": str(sig), "public_key": str(key)}
    if not sig.is_file():
        finding = _finding("S502", model, f"no signature at {sig}", evidence)
    else:
        try:
            config = ms.verifying.Config().use_elliptic_key_verifier(public_key=key)
            config.set_hashing_config(_hashing(ms, model, sig)).verify(model, sig)
        except Exception as exc:  # the library raises several unrelated types
            evidence["reason"] = str(exc)[:500]
            finding = _finding("S502", model, f"signature {sig} does not verify: {exc}", evidence)
        else:
            finding = _finding("S504", model, f"signature {sig} verifies", evidence)
    run = RunInfo(command="verify", subject=str(model), analysers=("scan",))
    return Report(findings=(finding,), run=run)


def generate_keys(out: Path) -> tuple[Path, Path]:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError:
        raise UsageError("key generation needs the cryptography package", hint=_EXTRA) from None
    out.mkdir(parents=True, exist_ok=True)
    private, public = out / "private.pem", out / "public.pem"
    if private.exists():
        raise UsageError(f"{private} exists; refusing to overwrite a key", hint="choose --out")
    key = ec.generate_private_key(ec.SECP256R1())
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public
