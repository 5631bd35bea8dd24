"""Scan files and directories: sniff each blob, hand it to its analyser, recurse into containers.

One `_Context` per top-level file carries the budget and collects issues and
the artifacts found (for verdicts, exposure findings and the ML-BOM). The
verdict of a file is the worst effect of its issues: a file is `clean` only
when every byte a loader would interpret was read and judged.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bastion.errors import ScanError, UsageError
from bastion.scan.containers import scan_tar, scan_zip
from bastion.scan.formats import Format, sniff
from bastion.scan.keras_config import check_keras_config
from bastion.scan.onnx_model import check_onnx
from bastion.scan.pickle_analyser import analyse_pickle
from bastion.scan.rules import Issue, Verdict, worst
from bastion.scan.source import IN_MEMORY_BYTES, Budget, LimitExceeded, ScanLimits, inflate
from bastion.scan.tensor_files import check_npy, check_safetensors

__all__ = ["Artifact", "FileScan", "Scanner"]

_ALL = ("python", "numpy", "sklearn", "scipy", "joblib", "torch", "pandas", "boosting", "configs")
_TORCH = ("python", "torch", "numpy", "configs")
_MAX_ONNX = 2 << 30
_CODECS = {Format.GZIP: "gzip", Format.BZ2: "bz2", Format.XZ: "xz", Format.ZLIB: "zlib"}


@dataclass
class Artifact:
    """A model found in a file (the file itself, or a member at `member`)."""

    member: str | None
    format: str
    size: int
    sha256: str | None = None
    verdict: Verdict = Verdict.CLEAN


@dataclass
class FileScan:
    path: str
    size: int
    sha256: str
    formats: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        return worst([i.effect for i in self.issues])

    @property
    def is_model(self) -> bool:
        return bool(self.artifacts)


@dataclass
class Node:
    """What `scan_blob` learned about one blob, for its parent container."""

    format: str | None
    is_model: bool


class _Context:
    def __init__(self, limits: ScanLimits) -> None:
        self.budget = Budget(limits)
        self.issues: list[Issue] = []
        self.artifacts: list[Artifact] = []


def _digest(stream: IO[bytes]) -> str:
    h = hashlib.sha256()
    stream.seek(0)
    while chunk := stream.read(1 << 20):
        h.update(chunk)
    stream.seek(0)
    return h.hexdigest()


def _size(stream: IO[bytes]) -> int:
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    return size


class Scanner:
    """Reads artifacts without loading them; one instance can scan many paths."""

    def __init__(self, limits: ScanLimits | None = None, *, digest: bool = True) -> None:
        self.limits = limits or ScanLimits()
        self.digest = digest  # sha256 of every file and bundled model, for reports and BOMs

    # -- public -----------------------------------------------------------------------------
    def scan_paths(self, paths: Iterable[str | os.PathLike[str]]) -> list[FileScan]:
        return [self.scan_file(p) for p in self.expand(paths)]

    @staticmethod
    def expand(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
        for raw in paths:
            path = Path(raw)
            if path.is_symlink() and path.is_dir():
                continue
            if path.is_dir():
                for root, dirs, files in os.walk(path, followlinks=False):
                    dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__"))
                    for name in sorted(files):
                        full = Path(root, name)
                        if full.is_file() and not full.is_symlink():
                            yield full
            elif path.is_file():
                yield path
            else:
                raise UsageError(f"{raw}: no such file or directory", hint="check the path")

    def scan_file(self, path: str | os.PathLike[str]) -> FileScan:
        ctx = _Context(self.limits)
        try:
            with open(path, "rb") as fh:
                size = _size(fh)
                stream: IO[bytes] = fh
                if size <= IN_MEMORY_BYTES:
                    data = fh.read()
                    digest = hashlib.sha256(data).hexdigest() if self.digest else ""
                    stream = io.BytesIO(data)
                else:
                    digest = _digest(fh) if self.digest else ""
                try:
                    node = self.scan_blob(stream, None, 0, ctx, _ALL)
                except LimitExceeded as exc:
                    ctx.issues.append(Issue("S206", f"scan stopped: {exc}", None, exc.kind))
                    node = Node(None, False)
        except OSError as exc:
            raise ScanError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        result = FileScan(str(path), size, digest, issues=ctx.issues, artifacts=ctx.artifacts)
        result.formats = [node.format] if node.format else []
        for art in result.artifacts:
            art.verdict = worst([i.effect for i in ctx.issues if _inside(i.member, art.member)])
            if art.member is None:
                art.sha256 = digest or None
        return result

    # -- dispatch ---------------------------------------------------------------------------
    def scan_blob(
        self,
        stream: IO[bytes],
        member: str | None,
        depth: int,
        ctx: _Context,
        frameworks: tuple[str, ...],
        *,
        probe: bool = True,
    ) -> Node:
        ctx.budget.depth(depth)
        ctx.budget.clock()
        formats = sniff(stream)
        size = _size(stream)
        if Format.ZIP in formats:
            zip_node = scan_zip(self, stream, member, depth, ctx)
            if zip_node is not None:
                if formats & {Format.PICKLE, Format.TORCH_LEGACY, Format.TAR}:
                    ctx.issues.append(
                        Issue(
                            "S207",
                            "the file opens as a zip archive and also starts as another format; "
                            "PyTorch and zip-based tools read different content",
                            member,
                            "zip+other",
                            {"formats": sorted(f.value for f in formats)},
                        )
                    )
                else:
                    return zip_node
        if Format.TAR in formats:
            tar_node = scan_tar(self, stream, member, depth, ctx)
            if tar_node is not None:
                return tar_node
        for packed, codec in _CODECS.items():
            if packed in formats:
                node = self._decompress(stream, member, depth, ctx, frameworks, codec)
                if node is not None:
                    return node
        if Format.SEVENZIP in formats:
            from bastion.scan.seven_zip import scan_7z

            seven = scan_7z(self, stream, member, depth, ctx)
            if seven is not None:
                return seven
        if formats & {Format.LZ4, Format.SEVENZIP}:
            fmt_name = next(iter(formats & {Format.LZ4, Format.SEVENZIP})).value
            self._model(ctx, member, fmt_name, stream)
            ctx.issues.append(
                Issue(
                    "S307", f"{fmt_name} content is not unpacked by this scanner", member, fmt_name
                )
            )
            return Node(fmt_name, True)
        for plain in (Format.TFLITE, Format.GGUF):
            if plain in formats:  # weights and graph only: nothing runs, but it is a model
                return self._model(ctx, member, plain.value, stream)
        if Format.NPY in formats:
            issues, _ = check_npy(stream, member)
            ctx.issues.extend(issues)
            return self._model(ctx, member, "numpy", stream)
        if Format.SAFETENSORS in formats:
            ctx.issues.extend(check_safetensors(stream, member))
            return self._model(ctx, member, "safetensors", stream)
        if Format.HDF5 in formats:
            from bastion.scan.hdf5_model import check_hdf5

            ctx.issues.extend(check_hdf5(stream, member))
            return self._model(ctx, member, "hdf5", stream)
        if Format.ONNX in formats and size <= _MAX_ONNX:
            stream.seek(0)
            issues = check_onnx(stream.read(), member)
            if not any(i.rule == "S301" for i in issues):  # else the guess was wrong
                ctx.issues.extend(issues)
                return self._model(ctx, member, "onnx", stream)
        legacy = Format.TORCH_LEGACY in formats
        is_pickle_head = legacy or Format.PICKLE in formats
        stream.seek(0)
        rep = analyse_pickle(
            stream,
            member=member,
            frameworks=_TORCH if legacy else frameworks,
            probe=probe and not is_pickle_head,
            clock=ctx.budget.clock,
        )
        if rep.is_pickle or is_pickle_head:
            ctx.issues.extend(rep.issues)
            fmt = "pytorch-legacy" if legacy else "pickle"
            if any(k.startswith("joblib.") for k in rep.allowed):
                fmt = "joblib"
            return self._model(ctx, member, fmt, stream)
        return Node(None, False)

    def _model(self, ctx: _Context, member: str | None, fmt: str, stream: IO[bytes]) -> Node:
        digest = _digest(stream) if member is not None and self.digest else None
        ctx.artifacts.append(Artifact(member, fmt, _size(stream), digest))
        return Node(fmt, True)

    def _decompress(
        self,
        stream: IO[bytes],
        member: str | None,
        depth: int,
        ctx: _Context,
        frameworks: tuple[str, ...],
        codec: str,
    ) -> Node | None:
        stream.seek(0)
        inner, finished = inflate(stream.read, codec, ctx.budget)
        with inner:
            produced = _size(inner)
            if not produced and (finished or codec == "zlib"):
                return None  # a two-byte zlib look-alike, or an empty stream
            if not finished:
                ctx.issues.append(
                    Issue(
                        "S301",
                        f"{codec} stream is corrupt or truncated after {produced} bytes; "
                        "what was decompressed is scanned",
                        member,
                        f"{codec}-truncated",
                    )
                )
            node = self.scan_blob(inner, member, depth + 1, ctx, frameworks)
        fmt = f"{node.format}+{codec}" if node.format else codec
        for art in ctx.artifacts:
            if art.member == member and art.format == node.format:
                art.format = fmt
        return Node(fmt, node.is_model)

    def keras_config(self, data: bytes, member: str | None, ctx: _Context) -> None:
        ctx.issues.extend(check_keras_config(data, member))


def _inside(issue_member: str | None, artifact_member: str | None) -> bool:
    if artifact_member is None:
        return True
    if issue_member is None:
        return False
    return issue_member == artifact_member or issue_member.startswith(
        (artifact_member + "!/", artifact_member + "#")
    )
