"""7z archives, read with py7zr when it is installed (`bastion-ml[7z]`).

nullifAI shipped PyTorch models packed with 7z because scanners did not open
7z at all. With py7zr each member is decompressed into a spooled file charged
to the scan budget, then scanned like any other member; without it, a 7z file
is `could-not-scan`, never clean.
"""

from __future__ import annotations

import tempfile
from typing import IO, TYPE_CHECKING, Any

from bastion.scan.rules import Issue
from bastion.scan.source import Budget, LimitExceeded

if TYPE_CHECKING:
    from bastion.scan.scanner import Node, Scanner, _Context

__all__ = ["scan_7z"]


def _writer_factory(py7zr: Any, budget: Budget) -> Any:
    """A py7zr WriterFactory that spools each member and charges what it writes."""

    class Spool(py7zr.io.Py7zIO):  # type: ignore[misc]
        def __init__(self) -> None:
            self.file = tempfile.SpooledTemporaryFile(max_size=budget.limits.spool_bytes)  # noqa: SIM115
            self.written = 0

        def write(self, data: bytes | bytearray) -> int:
            budget.inflate(len(data))
            self.written += len(data)
            return self.file.write(data)

        def read(self, size: int | None = None) -> bytes:
            return self.file.read(-1 if size is None else size)

        def seek(self, offset: int, whence: int = 0) -> int:
            return self.file.seek(offset, whence)

        def flush(self) -> None:
            self.file.flush()

        def size(self) -> int:
            return self.written

    class Factory(py7zr.io.WriterFactory):  # type: ignore[misc]
        def __init__(self) -> None:
            self.products: dict[str, Spool] = {}

        def create(self, filename: str) -> Spool:
            product = Spool()
            self.products[filename] = product
            return product

    return Factory()


def scan_7z(
    scanner: Scanner, stream: IO[bytes], member: str | None, depth: int, ctx: _Context
) -> Node | None:
    """Scan every member of a 7z archive; None when py7zr is not installed."""
    from bastion.scan.containers import _child, _escapes, _exposure
    from bastion.scan.scanner import _ALL, Node

    try:
        import py7zr
    except ImportError:
        return None
    limits = ctx.budget.limits
    stream.seek(0)
    factory = _writer_factory(py7zr, ctx.budget)
    try:
        with py7zr.SevenZipFile(stream, "r") as archive:
            infos = [i for i in archive.list() if not i.is_directory]
            for info in infos:
                ctx.budget.member()
                declared = int(info.uncompressed or 0)
                if declared > limits.max_total_bytes - ctx.budget.inflated:
                    raise LimitExceeded("size", f"7z member {info.filename!r} declares {declared}")
            archive.extract(factory=factory)
    except LimitExceeded:
        raise
    except Exception as exc:  # py7zr raises many types on hostile input
        ctx.issues.append(Issue("S208", f"7z archive cannot be read: {exc}", member, "7z"))
        return Node("7z", False)
    for name, spool in factory.products.items():
        child = _child(member, name)
        if _escapes(name):
            ctx.issues.append(
                Issue("S205", f"member {name!r} escapes the archive root", child, "path")
            )
        with spool.file as body:
            body.seek(0)
            node = scanner.scan_blob(body, child, depth + 1, ctx, _ALL)
        if node.is_model:
            _exposure(ctx, "7z", child, node.format)
    return Node("7z", False)
