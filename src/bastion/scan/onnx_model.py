"""ONNX models read as protobuf by hand: custom operator domains and external data paths.

An ONNX graph is data, but a node in a custom operator domain needs a native
library registered with the runtime, and an initializer's `external_data`
location is a file path the runtime opens: one that climbs out of the model's
directory reads (or, with some tools, writes) arbitrary files. Parsing the few
fields needed here takes no dependency and cannot execute anything.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from bastion.scan.rules import Issue

__all__ = ["check_onnx"]

_STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"}
_MAX_DEPTH = 32


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) for one protobuf message; raises ValueError."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("length-delimited field runs past the message")
            yield number, wire, buf[pos : pos + length]
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if pos != len(buf):
        raise ValueError("message truncated")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _text(value: bytes | int) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _Walk:
    def __init__(self, member: str | None) -> None:
        self.member = member
        self.issues: list[Issue] = []
        self.domains: set[str] = set()

    def model(self, buf: bytes) -> None:
        for number, _, value in _fields(buf):
            if number == 7 and isinstance(value, bytes):
                self.graph(value, 0)
            elif number == 8 and isinstance(value, bytes):  # opset_import
                for n, _, v in _fields(value):
                    if n == 1:
                        self.domain(_text(v), "opset_import")
            elif number == 25 and isinstance(value, bytes):  # functions
                for n, _, v in _fields(value):
                    if n == 7 and isinstance(v, bytes):
                        self.node(v, 0)

    def graph(self, buf: bytes, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise ValueError("subgraphs nested too deeply")
        for number, _, value in _fields(buf):
            if not isinstance(value, bytes):
                continue
            if number == 1:
                self.node(value, depth)
            elif number in (5, 15):  # initializer, sparse_initializer
                self.tensor(value)

    def node(self, buf: bytes, depth: int) -> None:
        op = ""
        for number, _, value in _fields(buf):
            if number == 4:
                op = _text(value)
            elif number == 7:
                self.domain(_text(value), f"node {op!r}")
            elif number == 5 and isinstance(value, bytes):  # attribute: subgraphs, tensors
                for n, _, v in _fields(value):
                    if (n == 6 and isinstance(v, bytes)) or (n == 11 and isinstance(v, bytes)):
                        self.graph(v, depth + 1)
                    elif n in (5, 10) and isinstance(v, bytes):  # t, tensors
                        self.tensor(v)

    def domain(self, name: str, where: str) -> None:
        if name in _STANDARD_DOMAINS or name in self.domains:
            return
        self.domains.add(name)
        self.issues.append(
            Issue(
                "S305",
                f"{where} uses operator domain {name!r}, which needs a custom operator "
                "library (native code) at load time",
                self.member,
                f"domain:{name}",
                {"domain": name},
            )
        )

    def tensor(self, buf: bytes) -> None:
        name = ""
        for number, _, value in _fields(buf):
            if number == 8:
                name = _text(value)
            elif number == 13 and isinstance(value, bytes):  # external_data entry
                entry = {n: _text(v) for n, _, v in _fields(value)}
                if entry.get(1) == "location":
                    self.location(name, entry.get(2, ""))

    def location(self, tensor: str, path: str) -> None:
        norm = posixpath.normpath(path.replace("\\", "/"))
        escapes = (
            path.startswith(("/", "\\"))
            or (len(path) > 1 and path[1] == ":")
            or norm == ".."
            or norm.startswith("../")
        )
        if escapes:
            self.issues.append(
                Issue(
                    "S306",
                    f"initializer {tensor!r} reads its data from {path!r}, outside the model's "
                    "directory",
                    self.member,
                    f"external:{path}",
                    {"tensor": tensor, "location": path},
                )
            )


def check_onnx(data: bytes, member: str | None) -> list[Issue]:
    walk = _Walk(member)
    try:
        walk.model(data)
    except (ValueError, RecursionError) as exc:
        walk.issues.append(Issue("S301", f"ONNX protobuf is malformed: {exc}", member, "onnx"))
    return walk.issues
