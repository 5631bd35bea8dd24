"""Formats that hold only arrays, checked so that "only arrays" is really true.

Safetensors is safe because its loader reads a JSON header and raw bytes; a
header whose offsets overlap, leave holes or point outside the file is either
an attack on a reader or not safetensors at all, so it is not called clean.
A `.npy` file is plain data unless its dtype holds Python objects, in which case
the payload is a pickle and is analysed as one.
"""

from __future__ import annotations

import ast
import io
import json
import math
import re
import struct
from typing import IO, Any

from bastion.scan.pickle_analyser import PickleReport, analyse_pickle
from bastion.scan.rules import Issue
from bastion.scan.source import window as open_window

__all__ = ["check_npy", "check_safetensors"]

_ST_MAX_HEADER = 100 << 20
# Object arrays hold whatever objects were saved (scipy matrices, sklearn objects): every
# framework list applies, and anything outside them is still suspicious.
_OBJECT_FRAMEWORKS = ("python", "numpy", "scipy", "sklearn", "pandas")
_PY2_LONG = re.compile(r"(?<=[0-9])L\b")
_ST_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "F4": 1, "F6_E2M3": 1,
    "F6_E3M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}  # fmt: skip


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate keys in the header")
    return dict(pairs)


def _tensor_problem(name: str, spec: Any) -> tuple[str | None, tuple[int, int] | None]:
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        return f"tensor {name!r} does not have exactly dtype, shape and data_offsets", None
    dtype, shape, offs = spec["dtype"], spec["shape"], spec["data_offsets"]
    if dtype not in _ST_DTYPES:
        return f"tensor {name!r} has unknown dtype {dtype!r}", None
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        return f"tensor {name!r} has an invalid shape", None
    if not (
        isinstance(offs, list)
        and len(offs) == 2
        and all(isinstance(o, int) and o >= 0 for o in offs)
        and offs[0] <= offs[1]
    ):
        return f"tensor {name!r} has invalid data_offsets {offs!r}", None
    width = _ST_DTYPES[dtype]
    need = math.prod(shape) * width if width >= 1 else 0
    if dtype in ("F4",):
        need = math.ceil(math.prod(shape) / 2)
    if dtype in ("F6_E2M3", "F6_E3M2"):
        need = math.ceil(math.prod(shape) * 6 / 8)
    if offs[1] - offs[0] != need:
        return f"tensor {name!r} spans {offs[1] - offs[0]} bytes, its shape needs {need}", None
    return None, (offs[0], offs[1])


def check_safetensors(stream: IO[bytes], member: str | None) -> list[Issue]:
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    (n,) = struct.unpack("<Q", stream.read(8))

    def bad(msg: str, key: str) -> list[Issue]:
        ev = {"header_bytes": n, "file_bytes": size}
        return [Issue("S302", msg, member, key, ev)]

    if n > _ST_MAX_HEADER or n > size - 8:
        return bad(f"header claims {n} bytes (file {size}, limit {_ST_MAX_HEADER})", "size")
    raw = stream.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        return bad(f"header is not valid JSON: {exc}", "json")
    if not isinstance(header, dict):
        return bad("header is not a JSON object", "object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
    ):
        return bad("__metadata__ must map strings to strings", "metadata")
    spans: list[tuple[int, int, str]] = []
    for name, spec in header.items():
        problem, span = _tensor_problem(name, spec)
        if problem is not None:
            return bad(problem, "tensor")
        assert span is not None
        spans.append((span[0], span[1], name))
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin != cursor:
            return bad(
                f"tensor {name!r} starts at {begin}, expected {cursor} (hole or overlap)", "gap"
            )
        cursor = end
    if cursor != size - 8 - n:
        return bad(f"tensors cover {cursor} bytes, the data section holds {size - 8 - n}", "tail")
    return []


def _has_object(descr: Any) -> bool:
    if isinstance(descr, str):
        return "O" in descr.lstrip("<>|=")[:1]
    if isinstance(descr, list | tuple):
        return any(_has_object(part) for part in descr)
    return False


def check_npy(stream: IO[bytes], member: str | None) -> tuple[list[Issue], PickleReport | None]:
    """Validate the header; analyse the payload as a pickle when the dtype holds objects."""
    size = stream.seek(0, io.SEEK_END)
    stream.seek(6)
    version = stream.read(2)
    width = 2 if version[:1] == b"\x01" else 4
    raw_len = stream.read(width)
    if len(raw_len) != width:
        return [Issue("S301", "npy header is truncated", member, "npy-header")], None
    hlen = int.from_bytes(raw_len, "little")
    start = 8 + width + hlen
    try:
        text = stream.read(hlen).decode("latin-1")
        header = ast.literal_eval(_PY2_LONG.sub("", text))  # Python 2 writers: (3L, 4L)
        descr, shape = header["descr"], tuple(header["shape"])
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError):
        return [Issue("S301", "npy header is not a valid dictionary", member, "npy-header")], None
    if _has_object(descr):
        window = open_window(stream, start, size - start)
        rep = analyse_pickle(window, member=member, frameworks=_OBJECT_FRAMEWORKS, joblib=False)
        note = Issue(
            "S109",
            f"array of dtype {descr!r} is stored as a pickle; numpy.load needs "
            "allow_pickle=True, which runs whatever that pickle imports",
            member,
            "npy-object",
            {"data_offset": start},
        )
        return [note, *rep.issues], rep
    import numpy

    try:
        itemsize = numpy.dtype(descr).itemsize
    except (TypeError, ValueError):
        return [Issue("S301", f"npy dtype {descr!r} not understood", member, "npy-dtype")], None
    need = math.prod(shape) * itemsize
    if size - start < need:
        msg = f"npy data holds {size - start} bytes, its header needs {need}"
        return [Issue("S301", msg, member, "npy-size", {"need": need})], None
    return [], None
