"""What a file is, decided from its bytes: extensions are chosen by whoever wrote the file.

Scanners that trusted `.pkl`/`.bin`/`.pt` were bypassed by renaming a pickle
(CVE-2025-1889, CVE-2025-10155). `sniff` reads the head and the tail of a file
and returns *every* format it could be, so a polyglot (a pickle with a zip
glued on, which `torch.load` runs as a pickle while a zip-based scanner lists
the zip) is seen as both.
"""

from __future__ import annotations

import io
import struct
from enum import StrEnum
from typing import IO

from bastion.scan.zip_reader import find_eocd

__all__ = ["MODEL_FORMATS", "Format", "sniff"]


class Format(StrEnum):
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZ2 = "bz2"
    XZ = "xz"
    ZLIB = "zlib"
    LZ4 = "lz4"
    SEVENZIP = "7z"
    NPY = "numpy"
    SAFETENSORS = "safetensors"
    HDF5 = "hdf5"
    ONNX = "onnx"
    PICKLE = "pickle"
    TORCH_LEGACY = "torch-legacy"
    TFLITE = "tflite"
    GGUF = "gguf"


# Formats that are models by themselves (zip-based models are decided by their members).
MODEL_FORMATS = frozenset(
    {
        Format.NPY,
        Format.SAFETENSORS,
        Format.HDF5,
        Format.ONNX,
        Format.PICKLE,
        Format.TORCH_LEGACY,
        Format.TFLITE,
        Format.GGUF,
    }
)

_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_ONNX_FIELDS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x52, 0x72, 0xCA}


def _zlib_header(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0


def _safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack_from("<Q", head)
    return n >= 2 and head[8:9] == b"{"


def _tar(head: bytes) -> bool:
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    try:  # v7 tar: no magic, but a valid header checksum
        stored = int(head[148:156].strip(b"\0 ").decode("ascii") or "x", 8)
    except ValueError:
        return False
    computed = sum(head[:148]) + 8 * 32 + sum(head[156:512])
    return stored == computed and head[0] != 0


def _varint(buf: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(buf) and shift < 64:
        b = buf[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return value, pos
        shift += 7
    return None


def _onnx(head: bytes) -> bool:
    """ModelProto starts with ir_version (field 1, varint), then known fields."""
    if len(head) < 4 or head[0] != 0x08:
        return False
    got = _varint(head, 1)
    if got is None or not 1 <= got[0] <= 64:
        return False
    return got[1] < len(head) and head[got[1]] in _ONNX_FIELDS


def _torch_legacy(head: bytes) -> bool:
    """Legacy torch.save: the first pickle is the magic number as a LONG."""
    if head[:2] != b"\x80\x02" or len(head) < 4:
        return False
    if head[2] == 0x8A:  # LONG1
        n = head[3]
        value = int.from_bytes(head[4 : 4 + n], "little", signed=True)
        return value == _TORCH_MAGIC
    return False


def sniff(stream: IO[bytes]) -> set[Format]:
    """Every format whose signature the bytes carry (often one; two for a polyglot)."""
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    head = stream.read(4096)
    found: set[Format] = set()
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08") or find_eocd(stream) is not None:
        found.add(Format.ZIP)
    if _tar(head):
        found.add(Format.TAR)
    magic = {
        b"\x1f\x8b": Format.GZIP,
        b"BZh": Format.BZ2,
        b"\xfd7zXZ\x00": Format.XZ,
        b"\x04\x22\x4d\x18": Format.LZ4,
        b"7z\xbc\xaf\x27\x1c": Format.SEVENZIP,
        b"\x93NUMPY": Format.NPY,
        b"\x89HDF\r\n\x1a\n": Format.HDF5,
    }
    for sig, fmt in magic.items():
        if head.startswith(sig):
            found.add(fmt)
    if head[:3] == b"\x5d\x00\x00":  # lzma-alone, as joblib writes with compress="lzma"
        found.add(Format.XZ)
    if head[4:8] == b"TFL3":  # flatbuffer file identifier
        found.add(Format.TFLITE)
    if head[:4] == b"GGUF":
        found.add(Format.GGUF)
    if _zlib_header(head):
        found.add(Format.ZLIB)
    if _safetensors(head, size):
        found.add(Format.SAFETENSORS)
    if _onnx(head):
        found.add(Format.ONNX)
    if _torch_legacy(head):
        found.add(Format.TORCH_LEGACY)
    elif head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        found.add(Format.PICKLE)
    return found
