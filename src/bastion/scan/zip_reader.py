"""A zip reader that sees what every loader might see, and says where they disagree.

Python's `zipfile` trusts the central directory, refuses names that differ
between headers, keeps only the last of duplicate names and stops on CRC
errors; PyTorch's reader (miniz) and streaming readers behave differently. Each
disagreement has been used to hide a pickle from a scanner while the real
loader still ran it (CVE-2025-1944, CVE-2025-1945, CVE-2025-10156). So this
reader parses the structures itself, yields *every* entry any reader could
load (central entries, duplicates, local headers the directory does not list,
bytes before the first entry) and reports each disagreement as an anomaly.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from typing import IO

__all__ = ["ZipAnomaly", "ZipEntry", "ZipListing", "find_eocd", "read_zip"]

_EOCD = b"PK\x05\x06"
_EOCD64 = b"PK\x06\x06"
_LOC64 = b"PK\x06\x07"
_CEN = b"PK\x01\x02"
_LOC = b"PK\x03\x04"
_MAX_COMMENT = 0xFFFF + 22


@dataclass
class ZipEntry:
    name: str
    method: int
    flags: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int  # local header, absolute in the file
    data_offset: int = -1  # first byte of member data, absolute
    local_name: str | None = None
    in_directory: bool = True

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/") and self.size == 0


@dataclass(frozen=True)
class ZipAnomaly:
    rule: str
    message: str
    key: str


@dataclass
class ZipListing:
    entries: list[ZipEntry] = field(default_factory=list)
    anomalies: list[ZipAnomaly] = field(default_factory=list)
    prefix_bytes: int = 0  # bytes before the first local header (polyglot head)


def find_eocd(stream: IO[bytes]) -> int | None:
    """Offset of the end-of-central-directory record, searching back over a comment."""
    size = stream.seek(0, io.SEEK_END)
    start = max(0, size - _MAX_COMMENT)
    stream.seek(start)
    tail = stream.read(size - start)
    at = tail.rfind(_EOCD)
    while at >= 0:
        if at + 22 <= len(tail):
            (comment_len,) = struct.unpack_from("<H", tail, at + 20)
            if at + 22 + comment_len <= len(tail):
                return start + at
        at = tail.rfind(_EOCD, 0, at)
    return None


def _name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")


def _zip64(extra: bytes, size: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 1:
            vals = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
            if size == 0xFFFFFFFF and vals:
                size = vals.pop(0)
            if csize == 0xFFFFFFFF and vals:
                csize = vals.pop(0)
            if offset == 0xFFFFFFFF and vals:
                offset = vals.pop(0)
        pos += 4 + length
    return size, csize, offset


def _directory(stream: IO[bytes], eocd: int) -> tuple[int, int, int, int]:
    stream.seek(eocd)
    rec = stream.read(22)
    _, _, _, _, count, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", rec)
    if eocd >= 20:
        stream.seek(eocd - 20)
        loc = stream.read(20)
        if loc[:4] == _LOC64:
            (eocd64,) = struct.unpack_from("<Q", loc, 8)
            stream.seek(eocd64)
            rec64 = stream.read(56)
            if rec64[:4] == _EOCD64:
                count, cd_size, cd_offset = struct.unpack_from("<QQQ", rec64, 32)
                eocd = eocd64
    return count, cd_size, cd_offset, eocd


def read_zip(stream: IO[bytes], *, max_entries: int) -> ZipListing:
    """List every entry of the zip in `stream`; raise ValueError if it is not a zip at all."""
    out = ZipListing()
    size = stream.seek(0, io.SEEK_END)
    eocd = find_eocd(stream)
    if eocd is None:
        raise ValueError("no end-of-central-directory record")
    count, cd_size, cd_offset, eocd = _directory(stream, eocd)
    # Like zipfile, allow data prepended to the whole archive (self-extractors, polyglots).
    shift = max(0, eocd - cd_size - cd_offset) if cd_offset + cd_size <= eocd else 0
    if shift:
        out.anomalies.append(
            ZipAnomaly(
                "S204",
                f"{shift} bytes precede the archive; offsets in its directory are shifted",
                "shifted",
            )
        )
    stream.seek(cd_offset + shift)
    directory = stream.read(min(cd_size, size))
    if count and directory[:4] != _CEN:
        raise ValueError("end record points at no central directory")  # stray signature bytes
    pos = 0
    while pos + 46 <= len(directory) and directory[pos : pos + 4] == _CEN:
        if len(out.entries) >= max_entries:
            raise OverflowError(f"more than {max_entries} entries")
        (flags, method, crc, csize, usize, nlen, xlen, clen, offset) = struct.unpack_from(
            "<4xHH4xLLLHHH8xL", directory, pos + 4
        )
        raw = directory[pos + 46 : pos + 46 + nlen]
        extra = directory[pos + 46 + nlen : pos + 46 + nlen + xlen]
        usize, csize, offset = _zip64(extra, usize, csize, offset)
        out.entries.append(
            ZipEntry(_name(raw, flags), method, flags, crc, csize, usize, offset + shift)
        )
        pos += 46 + nlen + xlen + clen
    if len(out.entries) != count:
        out.anomalies.append(
            ZipAnomaly(
                "S204",
                f"end record announces {count} entries, the directory holds {len(out.entries)}",
                "count",
            )
        )
    for entry in out.entries:
        _read_local(stream, entry, size, out)
    _walk_locals(stream, out, cd_offset + shift, max_entries)
    _duplicates(out)
    return out


def _read_local(stream: IO[bytes], entry: ZipEntry, size: int, out: ZipListing) -> None:
    stream.seek(entry.header_offset)
    head = stream.read(30)
    if len(head) < 30 or head[:4] != _LOC:
        out.anomalies.append(
            ZipAnomaly(
                "S204",
                f"directory entry {entry.name!r} points at offset {entry.header_offset}, "
                "where there is no local header",
                f"nolocal:{entry.name}",
            )
        )
        return
    lflags, nlen, xlen = struct.unpack_from("<H", head, 6)[0], *struct.unpack_from("<HH", head, 26)
    local = _name(stream.read(nlen), lflags)
    entry.local_name = local
    entry.data_offset = entry.header_offset + 30 + nlen + xlen
    if local != entry.name:
        out.anomalies.append(
            ZipAnomaly(
                "S202",
                f"member is {entry.name!r} in the directory but {local!r} in its local header; "
                "zipfile refuses it, PyTorch loads it",
                f"names:{entry.name}",
            )
        )
    if (lflags ^ entry.flags) & 0x1 or entry.flags & 0x1:
        out.anomalies.append(
            ZipAnomaly(
                "S209",
                f"member {entry.name!r} is flagged encrypted (local {lflags:#x}, directory "
                f"{entry.flags:#x}); readers that ignore the flag still load its bytes",
                f"flags:{entry.name}",
            )
        )
    if entry.data_offset + entry.compressed_size > size:
        out.anomalies.append(
            ZipAnomaly(
                "S204", f"member {entry.name!r} runs past the end of the file", f"eof:{entry.name}"
            )
        )


def _walk_locals(stream: IO[bytes], out: ZipListing, directory_at: int, max_entries: int) -> None:
    """Follow local headers from the start, as a streaming reader would, to find hidden ones."""
    known = {e.header_offset for e in out.entries}
    starts = sorted(known)
    first = starts[0] if starts else directory_at
    out.prefix_bytes = first
    pos = first
    while pos < directory_at:
        stream.seek(pos)
        head = stream.read(30)
        if len(head) < 30 or head[:4] != _LOC:
            nxt = [s for s in starts if s > pos]
            gap_end = nxt[0] if nxt else directory_at
            if gap_end > pos:
                out.anomalies.append(
                    ZipAnomaly(
                        "S204",
                        f"{gap_end - pos} bytes at offset {pos} belong to no listed member",
                        f"gap:{pos}",
                    )
                )
            if not nxt:
                return
            pos = nxt[0]
            continue
        flags, method, crc, csize, usize, nlen, xlen = struct.unpack_from("<2xHHxxxxLLLHH", head, 4)
        if pos not in known:
            if len(out.entries) >= max_entries:
                raise OverflowError(f"more than {max_entries} entries")
            name = _name(stream.read(nlen), flags)
            hidden = ZipEntry(name, method, flags, crc, csize, usize, pos, pos + 30 + nlen + xlen)
            hidden.local_name, hidden.in_directory = name, False
            out.entries.append(hidden)
            known.add(pos)
            out.anomalies.append(
                ZipAnomaly(
                    "S204",
                    f"local header at offset {pos} ({name!r}) is missing from the directory; "
                    "streaming readers load it",
                    f"hidden:{pos}",
                )
            )
        entry = next(e for e in out.entries if e.header_offset == pos)
        if entry.flags & 0x8 and entry.in_directory is False:
            return  # sizes live in a data descriptor we cannot find without inflating
        length = entry.compressed_size if entry.in_directory else csize
        nxt_pos = pos + 30 + nlen + xlen + length
        if entry.flags & 0x8:
            stream.seek(nxt_pos)
            desc = stream.read(4)
            nxt_pos += 16 if desc == b"PK\x07\x08" else 12
        if nxt_pos <= pos:
            return
        pos = nxt_pos


def _duplicates(out: ZipListing) -> None:
    seen: dict[str, int] = {}
    for e in out.entries:
        seen[e.name] = seen.get(e.name, 0) + 1
    for name, n in seen.items():
        if n > 1:
            out.anomalies.append(
                ZipAnomaly(
                    "S201",
                    f"{n} members are named {name!r}; zipfile reads the last, other readers "
                    "the first",
                    f"dup:{name}",
                )
            )
