"""Zip and tar containers: every member a loader could read is scanned, under the budget.

Members are scanned by content, whatever their names say. A model found inside
a container that is not itself a model format (a wheel, an APK, a JAR, a plain
zip or tar) is shipped to whoever gets the bundle, so it is reported as a
white-box exposure with its path inside the bundle.
"""

from __future__ import annotations

import posixpath
import re
import tarfile
import zlib
from typing import IO, TYPE_CHECKING

from bastion.scan.rules import Issue
from bastion.scan.source import LimitExceeded, inflate, window
from bastion.scan.zip_reader import ZipEntry, read_zip

if TYPE_CHECKING:
    from bastion.scan.scanner import Node, Scanner, _Context

__all__ = ["bundle_kind", "scan_tar", "scan_zip"]

_STORAGE = re.compile(r"^(?:[^/]+/)?data/\d+$")
_TORCH_TAR = {"sys_info", "pickle", "storages"}


def _child(member: str | None, name: str) -> str:
    return f"{member}!/{name}" if member else name


def _escapes(name: str) -> bool:
    clean = name.replace("\\", "/")
    norm = posixpath.normpath(clean)
    return (
        clean.startswith("/")
        or bool(re.match(r"^[A-Za-z]:", clean))
        or norm == ".."
        or norm.startswith("../")
    )


def bundle_kind(names: list[str]) -> str:
    """What kind of client bundle (or model container) a member list describes."""
    s = set(names)
    if any(n.endswith("/constants.pkl") for n in s) and any("/code/" in n for n in s):
        return "torchscript"
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in s):
        return "pytorch"
    if "config.json" in s and ({"metadata.json", "model.weights.h5"} & s):
        return "keras"
    files = [n for n in s if not n.endswith("/")]
    if files and all(n.endswith(".npy") for n in files):
        return "numpy-npz"
    if "AndroidManifest.xml" in s or any(n.endswith(".dex") for n in s):
        return "apk"
    if any(re.match(r"^[^/]+\.dist-info/WHEEL$", n) for n in s):
        return "wheel"
    if any(n.startswith("Payload/") and ".app/" in n for n in s):
        return "ipa"
    if "META-INF/MANIFEST.MF" in s:
        return "jar"
    return "zip"


_MODEL_CONTAINERS = {"pytorch", "torchscript", "keras", "numpy-npz", "pytorch-legacy-tar"}


_APP_BUNDLES = {"apk", "ipa", "jar", "wheel"}


def _exposure(ctx: _Context, kind: str, child: str, fmt: str | None) -> None:
    """App bundles reach clients by design (S401); a plain archive only if it is shipped (S402)."""
    ctx.issues.append(
        Issue(
            "S401" if kind in _APP_BUNDLES else "S402",
            f"a {fmt or 'model'} model ships inside this {kind} bundle at {child!r}; anyone "
            "with the bundle has the weights (white-box: extraction is free, evasion is easy)",
            child,
            f"exposed:{child}",
            {"bundle": kind, "member": child, "format": fmt},
        )
    )


def _open_entry(stream: IO[bytes], e: ZipEntry, ctx: _Context) -> IO[bytes] | str:
    if e.data_offset < 0:
        return "no local header"
    raw = window(stream, e.data_offset, e.compressed_size)
    if e.method == 0:
        return raw
    codec = {8: "deflate", 12: "bz2"}.get(e.method)
    if codec is None:
        return f"compression method {e.method} is not supported"
    inner, finished = inflate(raw.read, codec, ctx.budget)
    if not finished:
        inner.close()
        return "compressed data is corrupt"
    return inner


def _crc(data: IO[bytes]) -> int:
    crc = 0
    data.seek(0)
    while chunk := data.read(1 << 20):
        crc = zlib.crc32(chunk, crc)
    data.seek(0)
    return crc


def scan_zip(
    scanner: Scanner, stream: IO[bytes], member: str | None, depth: int, ctx: _Context
) -> Node | None:
    from bastion.scan.scanner import _ALL, _TORCH, Node

    try:
        listing = read_zip(stream, max_entries=ctx.budget.limits.max_members)
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, OverflowError):
            raise LimitExceeded("members", str(exc)) from None
        return None
    names = [e.name for e in listing.entries]
    kind = bundle_kind(names)
    for a in listing.anomalies:
        ctx.issues.append(Issue(a.rule, a.message, member, a.key))
    if listing.prefix_bytes:
        head = window(stream, 0, listing.prefix_bytes)
        scanner.scan_blob(head, _child(member, "<prefix>"), depth + 1, ctx, _ALL)
    fws = {"pytorch": _TORCH, "torchscript": (*_TORCH, "torchscript")}.get(kind, _ALL)
    roots = sorted({n.rpartition("/")[0] for n in names if n.endswith("data.pkl")})
    if kind in ("pytorch", "torchscript") and len(roots) > 1:
        ctx.issues.append(
            Issue(
                "S210",
                f"{len(roots)} archive roots hold a data.pkl ({', '.join(map(repr, roots))}); "
                "torch.load takes the root of the first record, other tools another",
                member,
                "roots",
                {"roots": roots},
            )
        )
    for e in listing.entries:
        if e.is_dir:
            continue
        ctx.budget.member()
        child = _child(member, e.name)
        if _escapes(e.name):
            ctx.issues.append(
                Issue("S205", f"member name {e.name!r} escapes the archive root", child, "path")
            )
        if kind in ("pytorch", "torchscript") and _STORAGE.match(e.name):
            continue  # raw tensor bytes: torch reads them as storage, never unpickles them
        if kind == "keras" and e.name.endswith(".h5") and "/" not in e.name:
            continue  # the weights file: arrays only, Keras takes the architecture from config
        limits = ctx.budget.limits
        if e.method and e.size > 16 << 20 and e.size > limits.max_ratio * max(e.compressed_size, 1):
            raise LimitExceeded(
                "ratio", f"member {e.name!r} declares {e.size} bytes from {e.compressed_size}"
            )
        opened = _open_entry(stream, e, ctx)
        if isinstance(opened, str):
            ctx.issues.append(Issue("S208", f"member {e.name!r}: {opened}", child, "open"))
            continue
        with opened:
            if _crc(opened) != e.crc:
                ctx.issues.append(
                    Issue(
                        "S203",
                        f"member {e.name!r} fails its CRC check; zipfile refuses it, PyTorch "
                        "loads it",
                        child,
                        "crc",
                    )
                )
            if kind == "keras" and e.name == "config.json":
                scanner.keras_config(opened.read(), child, ctx)
                continue
            try:
                node = scanner.scan_blob(opened, child, depth + 1, ctx, fws)
            except LimitExceeded as exc:
                if exc.kind != "depth":
                    raise
                ctx.issues.append(Issue("S206", f"not scanned: {exc}", child, "depth"))
                continue
        if node.is_model and kind not in _MODEL_CONTAINERS:
            _exposure(ctx, kind, child, node.format)
    if kind in _MODEL_CONTAINERS:
        return scanner._model(ctx, member, kind, stream)
    return Node(kind, False)


def scan_tar(
    scanner: Scanner, stream: IO[bytes], member: str | None, depth: int, ctx: _Context
) -> Node | None:
    from bastion.scan.scanner import _ALL, _TORCH, Node

    stream.seek(0)
    try:
        tar = tarfile.open(fileobj=stream, mode="r:")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError, EOFError):
        return None
    with tar:
        infos: list[tarfile.TarInfo] = []
        try:
            while (info := tar.next()) is not None:
                ctx.budget.member()
                infos.append(info)
        except tarfile.TarError as exc:
            ctx.issues.append(Issue("S301", f"tar archive is corrupt: {exc}", member, "tar"))
        names = [i.name for i in infos]
        legacy = set(names) >= _TORCH_TAR
        kind = "pytorch-legacy-tar" if legacy else "tar"
        for info in infos:
            child = _child(member, info.name)
            target = info.linkname if (info.issym() or info.islnk()) else ""
            link_escape = bool(target) and _escapes(
                posixpath.join(posixpath.dirname(info.name), target)
            )
            if _escapes(info.name) or link_escape:
                ctx.issues.append(
                    Issue(
                        "S205",
                        f"member {info.name!r} {'links to ' + repr(target) if target else 'lies'} "
                        "outside the archive root",
                        child,
                        "path",
                    )
                )
            if not info.isreg() or info.sparse is not None:
                continue
            body = window(stream, info.offset_data, info.size)
            with body:
                try:
                    node = scanner.scan_blob(
                        body, child, depth + 1, ctx, _TORCH if legacy else _ALL
                    )
                except LimitExceeded as exc:
                    if exc.kind != "depth":
                        raise
                    ctx.issues.append(Issue("S206", f"not scanned: {exc}", child, "depth"))
                    continue
            if node.is_model and not legacy:
                _exposure(ctx, "tar", child, node.format)
    if legacy:
        return scanner._model(ctx, member, kind, stream)
    return Node(kind, False)
