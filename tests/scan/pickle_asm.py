"""A tiny pickle assembler and zip writer for building test samples byte by byte.

Malicious samples must be exact (memo tricks, broken streams, bad headers), and
they must never be produced by running the payload, so they are assembled
from opcodes; zips are written by hand so headers can disagree on purpose.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field


class Asm:
    def __init__(self, proto: int | None = 2) -> None:
        self.b = bytearray()
        if proto is not None and proto >= 2:
            self.b += bytes([0x80, proto])

    def raw(self, data: bytes) -> Asm:
        self.b += data
        return self

    def glob(self, module: str, name: str) -> Asm:
        return self.raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def inst(self, module: str, name: str) -> Asm:
        return self.raw(b"i" + module.encode() + b"\n" + name.encode() + b"\n")

    def s(self, text: str) -> Asm:
        data = text.encode()
        if len(data) < 256:
            return self.raw(b"\x8c" + bytes([len(data)]) + data)
        return self.raw(b"X" + struct.pack("<I", len(data)) + data)

    def string0(self, text: str) -> Asm:
        return self.raw(b"S'" + text.encode() + b"'\n")

    def by(self, data: bytes) -> Asm:
        if len(data) < 256:
            return self.raw(b"C" + bytes([len(data)]) + data)
        return self.raw(b"B" + struct.pack("<I", len(data)) + data)

    def int(self, n: int) -> Asm:
        return self.raw(b"J" + struct.pack("<i", n))

    def sg(self) -> Asm:
        return self.raw(b"\x93")

    def mark(self) -> Asm:
        return self.raw(b"(")

    def tup(self) -> Asm:
        return self.raw(b"t")

    def t1(self) -> Asm:
        return self.raw(b"\x85")

    def t2(self) -> Asm:
        return self.raw(b"\x86")

    def t3(self) -> Asm:
        return self.raw(b"\x87")

    def empty_tuple(self) -> Asm:
        return self.raw(b")")

    def reduce(self) -> Asm:
        return self.raw(b"R")

    def build(self) -> Asm:
        return self.raw(b"b")

    def newobj(self) -> Asm:
        return self.raw(b"\x81")

    def obj(self) -> Asm:
        return self.raw(b"o")

    def put(self, i: int) -> Asm:
        return self.raw(b"q" + bytes([i]))

    def get(self, i: int) -> Asm:
        return self.raw(b"h" + bytes([i]))

    def memoize(self) -> Asm:
        return self.raw(b"\x94")

    def pop(self) -> Asm:
        return self.raw(b"0")

    def dict(self) -> Asm:
        return self.raw(b"}")

    def setitem(self) -> Asm:
        return self.raw(b"s")

    def none(self) -> Asm:
        return self.raw(b"N")

    def persid(self) -> Asm:
        return self.raw(b"Q")

    def stop(self) -> bytes:
        return bytes(self.b + b".")

    def call(self, module: str, name: str, *args: str) -> Asm:
        """module.name(*args) with GLOBAL + TUPLE + REDUCE."""
        self.glob(module, name).mark()
        for a in args:
            self.s(a)
        return self.tup().reduce()


@dataclass
class ZipMember:
    name: str
    data: bytes
    local_name: str | None = None
    crc: int | None = None
    flags: int = 0
    deflate: bool = False
    hidden: bool = False  # written, but left out of the central directory


@dataclass
class ZipSpec:
    members: list[ZipMember] = field(default_factory=list)
    prefix: bytes = b""

    def add(self, name: str, data: bytes, **kw: object) -> ZipSpec:
        self.members.append(ZipMember(name, data, **kw))  # type: ignore[arg-type]
        return self

    def build(self) -> bytes:
        out = bytearray(self.prefix)
        central = bytearray()
        count = 0
        for m in self.members:
            body = m.data
            method = 0
            if m.deflate:
                c = zlib.compressobj(6, zlib.DEFLATED, -15)
                body = c.compress(m.data) + c.flush()
                method = 8
            crc = zlib.crc32(m.data) if m.crc is None else m.crc
            local_name = (m.local_name or m.name).encode()
            offset = len(out) - len(self.prefix)
            out += struct.pack(
                "<4sHHHHHLLLHH", b"PK\x03\x04", 20, m.flags, method, 0, 0x21,
                crc, len(body), len(m.data), len(local_name), 0,
            )  # fmt: skip
            out += local_name + body
            if m.hidden:
                continue
            name = m.name.encode()
            central += struct.pack(
                "<4sHHHHHHLLLHHHHHLL", b"PK\x01\x02", 20, 20, m.flags, method, 0, 0x21,
                crc, len(body), len(m.data), len(name), 0, 0, 0, 0, 0, offset + len(self.prefix),
            )  # fmt: skip
            central += name
            count += 1
        cd_offset = len(out)
        out += central
        out += struct.pack(
            "<4sHHHHLLH", b"PK\x05\x06", 0, 0, count, count, len(central), cd_offset, 0
        )
        return bytes(out)
