"""From a simulated pickle run to issues: imports judged, calls followed, streams stacked.

A file may hold several pickles back to back (legacy PyTorch, repeated
`pickle.dump`), a pickle inside a pickle (bytes handed to `pickle.loads`), or
raw array bytes between opcodes (joblib). Each is walked the way its loader
walks it; data after the last STOP is looked at rather than ignored, because a
loader that calls `load()` again will execute it.
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from bastion.scan.allowlist import LOADS_LIKE, ImportClass, ImportDecision, classify_import
from bastion.scan.pickle_machine import BytesRef, Global, MachineResult, Obj, PickleMachine, Seq
from bastion.scan.rules import Issue

__all__ = ["PickleReport", "analyse_pickle"]

_MAX_STACKED = 64
_IN_MEMORY = 64 << 20
_MAX_NESTED_DEPTH = 4
_DTYPE_TEXT = re.compile(r"^[<>|=]?[a-zA-Z]{1,2}\d{0,4}$")
_BYTESIO = {("io", "BytesIO"), ("_io", "BytesIO")}
_ENCODERS = {("_codecs", "encode"), ("codecs", "encode")}
_JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")


@dataclass
class PickleReport:
    is_pickle: bool = False
    complete: bool = True
    streams: int = 0
    protocol: int = 0
    issues: list[Issue] = field(default_factory=list)
    allowed: dict[str, str] = field(default_factory=dict)  # "module.name" -> framework
    trailing_bytes: int = 0


class _Limitation(Exception):
    """The loader could read this, but the scanner cannot: fail closed (could-not-scan)."""


class _Analysis:
    def __init__(
        self,
        stream: IO[bytes],
        member: str | None,
        frameworks: tuple[str, ...],
        *,
        joblib: bool,
        depth: int,
        clock: Callable[[], None] | None = None,
    ) -> None:
        self.clock = clock
        self.stream = stream
        self.member = member
        self.frameworks = frameworks
        self.joblib = joblib
        self.depth = depth
        self.report = PickleReport()
        self._seen: set[tuple[str, str]] = set()

    # -- one stream -------------------------------------------------------------------------
    def _run_one(self) -> MachineResult:
        hook = self._joblib_hook if self.joblib else None
        return PickleMachine(self.stream, build_hook=hook, clock=self.clock).run()

    def run(self, *, probe: bool) -> PickleReport:
        rep = self.report
        size = self.stream.seek(0, io.SEEK_END)
        self.stream.seek(0)
        while rep.streams < _MAX_STACKED:
            start = self.stream.tell()
            try:
                res = self._run_one()
            except _Limitation as exc:
                rep.is_pickle = True
                self._add("S301", f"scanner cannot follow this stream: {exc}", str(exc), {})
                rep.complete = False
                return rep
            active = bool(res.imports or res.calls or res.extensions)
            first = rep.streams == 0
            looks_like_pickle = res.complete or active
            if not looks_like_pickle and first and probe:
                return rep  # not a pickle at all: nothing a loader would run
            if not looks_like_pickle and not first:
                rep.trailing_bytes = size - start
                self._add(
                    "S107",
                    f"{size - start} bytes follow the last pickle stream at offset {start}; "
                    "they do not decode as another pickle",
                    f"trailing@{start}",
                    {"offset": start, "bytes": size - start},
                )
                return rep
            rep.is_pickle = True
            rep.streams += 1
            rep.protocol = max(rep.protocol, res.protocol)
            self._judge(res)
            if not res.complete:
                self._add(
                    "S106",
                    f"pickle stream starting at offset {start} breaks at offset "
                    f"{res.error_pos}: {res.error}; everything before that point runs on load",
                    f"broken@{start}",
                    {"offset": start, "error_offset": res.error_pos, "opcodes_before": res.ops},
                )
                return rep
            assert res.end is not None
            if res.end >= size:
                return rep
            self.stream.seek(res.end)
        self._add("S206", f"more than {_MAX_STACKED} stacked pickles", "stacked", {})
        rep.complete = False
        return rep

    # -- judging ----------------------------------------------------------------------------
    def _add(self, rule: str, message: str, key: str, evidence: dict[str, Any]) -> None:
        self.report.issues.append(Issue(rule, message, self.member, key, evidence))

    def _judge(self, res: MachineResult) -> None:
        proto = res.protocol or 2
        for site in res.imports:
            if site.module is None or site.name is None:
                self._add(
                    "S103",
                    f"{site.opcode} at offset {site.pos} imports a name that is not a constant "
                    "string, so the import is decided at load time",
                    f"dynamic@{site.pos}",
                    {"offset": site.pos, "opcode": site.opcode},
                )
                continue
            dec = classify_import(
                site.module, site.name, protocol=proto, frameworks=self.frameworks
            )
            self._judge_import(dec, site.pos, site.opcode, site.from_memo)
        for code, pos in res.extensions:
            self._add(
                "S103",
                f"EXT opcode at offset {pos} imports extension code {code} from copyreg's "
                "registry, which the scanner cannot see",
                f"ext@{code}",
                {"offset": pos, "code": code},
            )
        for glob, pos in res.builds_on_globals:
            self._add(
                "S108",
                f"BUILD at offset {pos} sets attributes on {glob.module}.{glob.name} itself, "
                "changing it for every later user",
                f"build@{glob.module}.{glob.name}",
                {"offset": pos, "target": f"{glob.module}.{glob.name}"},
            )
        for call in res.calls:
            callee = call.callee
            if isinstance(callee, Global):
                if (callee.module, callee.name) in LOADS_LIKE:
                    self._nested(callee, call.args, call.pos)
                continue
            self._add(
                "S104",
                f"{call.opcode} at offset {call.pos} calls an object returned by another call "
                f"({_describe(callee)}), the shape of getattr/attrgetter chains",
                f"computed@{call.pos}",
                {"offset": call.pos, "opcode": call.opcode},
            )

    def _judge_import(self, dec: ImportDecision, pos: int, opcode: str, memo: bool) -> None:
        dotted = f"{dec.module}.{dec.name}"
        if dec.verdict is ImportClass.ALLOWED:
            self.report.allowed[dotted] = dec.framework or ""
            return
        if (dec.module, dec.name) in self._seen:
            return
        self._seen.add((dec.module, dec.name))
        ev = {"offset": pos, "opcode": opcode, "import": dotted, "operands_from_memo": memo}
        if dec.verdict is ImportClass.GADGET:
            self._add(
                "S101", f"{opcode} at offset {pos} imports {dotted}: {dec.reason}", dotted, ev
            )
        else:
            fws = ", ".join(self.frameworks)
            self._add(
                "S102",
                f"{opcode} at offset {pos} imports {dotted}, which is {dec.reason} ({fws})",
                dotted,
                ev,
            )

    def _nested(self, callee: Global, args: Any, pos: int) -> None:
        data = self._bytes_of(args.items[0] if isinstance(args, Seq) and args.items else None)
        name = f"{callee.module}.{callee.name}"
        if data is None or self.depth >= _MAX_NESTED_DEPTH:
            why = "its argument is not constant" if data is None else "nesting is too deep"
            self._add(
                "S105",
                f"call to {name} at offset {pos} deserialises data the scanner cannot follow: "
                + why,
                f"nested@{pos}",
                {"offset": pos, "callee": name},
            )
            return
        inner_member = f"{self.member or ''}#pickle@{pos}"
        inner = _Analysis(
            data,
            inner_member,
            self.frameworks,
            joblib=False,
            depth=self.depth + 1,
            clock=self.clock,
        ).run(probe=False)
        self.report.issues.extend(inner.issues)
        self.report.complete = self.report.complete and inner.complete

    def _bytes_of(self, value: Any) -> IO[bytes] | None:
        if isinstance(value, bytes | bytearray):
            return io.BytesIO(bytes(value))
        if isinstance(value, str):
            return io.BytesIO(value.encode("latin-1", "replace"))
        if isinstance(value, BytesRef):
            here = self.stream.tell()
            self.stream.seek(value.offset)
            data = self.stream.read(value.length)
            self.stream.seek(here)
            return io.BytesIO(data)
        if isinstance(value, Obj) and isinstance(value.callee, Global):
            key = (value.callee.module, value.callee.name)
            items = value.args.items if isinstance(value.args, Seq) else []
            if key in _BYTESIO and items:
                return self._bytes_of(items[0])
            if key in _ENCODERS and items and isinstance(items[0], str):
                return io.BytesIO(items[0].encode("latin-1", "replace"))
        return None

    # -- joblib: arrays written straight into the stream after their wrapper ---------------
    def _joblib_hook(self, machine: PickleMachine, target: Obj, stream: IO[bytes]) -> None:
        callee = target.callee
        if not (isinstance(callee, Global) and (callee.module, callee.name) == _JOBLIB_WRAPPER):
            return
        state = _as_dict(target.state)
        shape = state.get("shape")
        dtype = state.get("dtype")
        if not isinstance(shape, Seq) or not all(isinstance(n, int) for n in shape.items):
            raise _Limitation("joblib array wrapper without a literal shape")
        itemsize, has_object = _dtype_size(dtype)
        if has_object:
            nested = _Analysis(
                stream,
                self.member,
                self.frameworks,
                joblib=False,
                depth=self.depth,
                clock=self.clock,
            )
            res = nested._run_one()
            nested._judge(res)
            self.report.issues.extend(nested.report.issues)
            if not res.complete:
                raise _Limitation(f"object array pickle broken: {res.error}")
            return
        if isinstance(state.get("numpy_array_alignment_bytes"), int):
            pad = stream.read(1)
            if len(pad) != 1:
                raise _Limitation("joblib array padding runs past the end")
            machine.skip(pad[0])
        machine.skip(math.prod(shape.items) * itemsize)


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Seq) and value.kind == "dict":
        return {k: v for k, v in value.items if isinstance(k, str)}
    return {}


def _dtype_size(dtype: Any) -> tuple[int, bool]:
    if not (isinstance(dtype, Obj) and isinstance(dtype.args, Seq) and dtype.args.items):
        raise _Limitation("joblib array dtype is not a literal numpy.dtype")
    text = dtype.args.items[0]
    if not isinstance(text, str) or not _DTYPE_TEXT.match(text):
        raise _Limitation(f"joblib array dtype {text!r} not understood")
    state = dtype.state.items if isinstance(dtype.state, Seq) else []
    flags = state[7] if len(state) > 7 and isinstance(state[7], int) else 0
    has_object = text.lstrip("<>|=").startswith("O") or bool(flags & 1)
    if len(state) > 5 and isinstance(state[5], int) and state[5] > 0:
        return state[5], has_object
    size = _itemsize(text)
    if size is None:
        raise _Limitation(f"joblib array dtype {text!r} not understood")
    return size, has_object


@functools.lru_cache(maxsize=256)
def _itemsize(text: str) -> int | None:
    """numpy's reading of a dtype string (already checked against _DTYPE_TEXT)."""
    import numpy

    try:
        return int(numpy.dtype(text).itemsize)
    except TypeError:
        return None


def _describe(value: Any) -> str:
    if isinstance(value, Obj) and isinstance(value.callee, Global):
        return f"result of {value.callee.module}.{value.callee.name}(...)"
    return type(value).__name__


def analyse_pickle(
    stream: IO[bytes],
    *,
    member: str | None,
    frameworks: tuple[str, ...],
    joblib: bool = True,
    probe: bool = False,
    clock: Callable[[], None] | None = None,
) -> PickleReport:
    """Walk every pickle stream in `stream` (seekable) and judge what a loader would run.

    `probe=True` is for content of unknown type: it reports nothing unless the
    bytes decode as a pickle that imports or calls something.
    """
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    if size <= _IN_MEMORY and not isinstance(stream, io.BytesIO):
        stream = io.BytesIO(stream.read())  # opcode-at-a-time reads are cheap in memory
    analysis = _Analysis(stream, member, frameworks, joblib=joblib, depth=0, clock=clock)
    return analysis.run(probe=probe)
