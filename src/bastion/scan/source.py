"""Bytes to scan, wherever they live, under bounds a hostile file cannot push past.

A member of a stored zip is a window onto its parent file (no copy); a
compressed member is inflated into a spooled temporary file, so memory stays
bounded whatever the archive claims. `Budget` counts what one top-level file
has cost so far (bytes inflated, members opened, nesting depth, time) and stops
a zip bomb or a million-member archive with a finding instead of a hang.
"""

from __future__ import annotations

import bz2
import io
import lzma
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

__all__ = [
    "IN_MEMORY_BYTES",
    "Budget",
    "LimitExceeded",
    "ScanLimits",
    "Window",
    "inflate",
    "window",
]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ScanLimits:
    """Bounds per top-level file; defaults fit real checkpoints and stop bombs."""

    max_total_bytes: int = 16 << 30  # bytes inflated from all compressed layers
    max_members: int = 100_000
    max_depth: int = 8
    max_ratio: float = 250.0  # inflated / compressed, checked once past 16 MiB
    max_seconds: float = 300.0
    spool_bytes: int = 32 << 20  # inflated data kept in memory up to this, then on disk


class LimitExceeded(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class Budget:
    def __init__(self, limits: ScanLimits) -> None:
        self.limits = limits
        self.inflated = 0
        self.members = 0
        self.started = time.monotonic()

    def member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise LimitExceeded("members", f"more than {self.limits.max_members} archive members")

    def depth(self, depth: int) -> None:
        if depth > self.limits.max_depth:
            raise LimitExceeded("depth", f"containers nested deeper than {self.limits.max_depth}")

    def clock(self) -> None:
        if time.monotonic() - self.started > self.limits.max_seconds:
            raise LimitExceeded("time", f"scan took longer than {self.limits.max_seconds:.0f} s")

    def inflate(self, produced: int) -> None:
        self.inflated += produced
        if self.inflated > self.limits.max_total_bytes:
            raise LimitExceeded(
                "size", f"more than {self.limits.max_total_bytes} bytes after decompression"
            )

    def ratio(self, produced: int, consumed: int) -> None:
        if produced > 16 << 20 and produced > self.limits.max_ratio * max(consumed, 1):
            raise LimitExceeded(
                "ratio",
                f"{produced} bytes from {consumed} compressed "
                f"(ratio above {self.limits.max_ratio:.0f})",
            )


class Window(io.RawIOBase):
    """A read-only, seekable view of `length` bytes of `base` starting at `offset`."""

    def __init__(self, base: IO[bytes], offset: int, length: int) -> None:
        super().__init__()
        self._base = base
        self._offset = offset
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        n = min(len(buffer), self._length - self._pos)
        if n <= 0:
            return 0
        self._base.seek(self._offset + self._pos)
        data = self._base.read(n)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


# Files, and parts of in-memory files, up to this size are scanned from memory:
# one read, then seeks and small reads cost no syscall and no Python-level call.
IN_MEMORY_BYTES = 16 << 20


def window(base: IO[bytes], offset: int, length: int) -> IO[bytes]:
    """`length` bytes of `base` from `offset`, as a seekable stream.

    A part of an in-memory file is copied out (no Python-level reads per call
    after that); a part of a file on disk stays a view, so memory stays bounded.
    """
    if isinstance(base, io.BytesIO) and length <= IN_MEMORY_BYTES:
        with base.getbuffer() as view:
            return io.BytesIO(bytes(view[max(0, offset) : max(0, offset + length)]))
    return io.BufferedReader(Window(base, offset, length), 1 << 16)


class _Codec:
    """One decompressor behind a common, output-bounded interface."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._new()

    def _new(self) -> None:
        if self.name in ("zlib", "deflate", "gzip"):
            wbits = {"zlib": 15, "deflate": -15, "gzip": 31}[self.name]
            self._z = zlib.decompressobj(wbits)
        elif self.name == "bz2":
            self._b: bz2.BZ2Decompressor | lzma.LZMADecompressor = bz2.BZ2Decompressor()
        elif self.name in ("xz", "lzma"):
            self._b = lzma.LZMADecompressor()
        else:
            raise ValueError(f"no decompressor for {self.name}")

    def pump(self, data: bytes) -> Iterator[bytes]:
        """Yield output in pieces of at most 1 MiB, whatever the input's ratio."""
        if self.name in ("zlib", "deflate", "gzip"):
            while data:
                yield self._z.decompress(data, _CHUNK)
                data = self._z.unconsumed_tail
                if self._z.eof:
                    rest = self._z.unused_data
                    if self.name != "gzip" or not rest.lstrip(b"\0"):
                        return
                    self._new()  # concatenated gzip members
                    data = rest
            return
        while True:
            if self._b.eof:
                return
            out = self._b.decompress(data, _CHUNK)
            data = b""
            yield out
            if self._b.needs_input or not out:
                return

    @property
    def finished(self) -> bool:
        if self.name in ("zlib", "deflate", "gzip"):
            return bool(self._z.eof)
        return bool(self._b.eof)


def inflate(read: Callable[[int], bytes], codec: str, budget: Budget) -> tuple[IO[bytes], bool]:
    """Decompress `read`'s stream into a spooled file, charging the budget as data arrives.

    Output is produced at most 1 MiB at a time, so a bomb is stopped within one
    piece of its bound; returns the file and whether the stream ended properly.
    """
    out = tempfile.SpooledTemporaryFile(max_size=budget.limits.spool_bytes)  # noqa: SIM115
    dec = _Codec(codec)
    consumed = produced = 0
    try:
        while not dec.finished:
            chunk = read(_CHUNK)
            if not chunk:
                break
            consumed += len(chunk)
            for piece in dec.pump(chunk):
                produced += len(piece)
                budget.inflate(len(piece))
                budget.ratio(produced, consumed)
                out.write(piece)
            budget.clock()
    except (zlib.error, OSError, EOFError, lzma.LZMAError):
        out.seek(0)
        return out, False
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out, dec.finished
