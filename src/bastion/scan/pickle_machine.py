"""A pickle virtual machine that never calls anything: the stack and memo, simulated.

`pickletools` decodes opcodes; this module plays them on a model of the
unpickler's stack and memo so that every import is resolved the way the real
loader resolves it (STACK_GLOBAL operands fetched from the memo, memo slots
overwritten, strings produced by calls), and every call site is seen with its
callee and arguments. Nothing here imports, calls or constructs what the
stream names. The simulation stops exactly where `pickle.load` would raise, and
keeps everything decoded before that point, because a loader executes the
prefix of a broken stream before it fails (nullifAI).

Large byte strings are not read into memory: they are represented by their
offset and length, so a multi-hundred-megabyte stream is walked in bounded
memory and a nested pickle inside one can still be analysed in place.
"""

from __future__ import annotations

import io
import pickletools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

__all__ = [
    "BytesRef",
    "CallSite",
    "Global",
    "ImportSite",
    "MachineResult",
    "Obj",
    "PickleMachine",
    "Seq",
]

_INLINE_LIMIT = 1 << 20  # byte strings above this stay on disk as a BytesRef
_MAX_OPS = 5_000_000
_LARGE_ARGS = {"bytes4", "bytes8", "bytearray8", "unicodestring4", "unicodestring8", "string4"}


@dataclass(frozen=True, slots=True)
class BytesRef:
    """A byte string left in the file: where it starts and how long it is."""

    offset: int
    length: int


@dataclass(slots=True)
class Global:
    module: str
    name: str
    pos: int


@dataclass(slots=True)
class Obj:
    """The result of a call the real loader would make (REDUCE, NEWOBJ, OBJ, INST)."""

    callee: Any
    args: Any
    pos: int
    state: Any = None


@dataclass(slots=True)
class Seq:
    kind: str  # tuple | list | dict | set | frozenset
    items: list[Any]


class _Opaque:
    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


_MARK = _Opaque("mark")


@dataclass(slots=True)
class ImportSite:
    module: str | None  # None: the operands were not constant strings
    name: str | None
    pos: int
    opcode: str
    from_memo: bool = False


@dataclass(slots=True)
class CallSite:
    callee: Any
    args: Any
    pos: int
    opcode: str


@dataclass
class MachineResult:
    start: int
    end: int | None = None  # offset after STOP; None when the stream broke
    protocol: int = 0
    ops: int = 0
    imports: list[ImportSite] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)
    builds_on_globals: list[tuple[Global, int]] = field(default_factory=list)
    persistent_ids: int = 0
    extensions: list[tuple[int, int]] = field(default_factory=list)
    error: str | None = None
    error_pos: int | None = None
    skipped_bytes: int = 0

    @property
    def complete(self) -> bool:
        return self.error is None and self.end is not None


class _Broken(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


# Called after each BUILD so a format (joblib) can consume raw bytes that its
# own unpickler reads from the stream right there.
BuildHook = Callable[["PickleMachine", Obj, IO[bytes]], None]


class PickleMachine:
    """Plays one pickle stream from the current position of `stream` to its STOP."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        build_hook: BuildHook | None = None,
        clock: Callable[[], None] | None = None,
    ) -> None:
        self.stream = stream
        self.build_hook = build_hook
        self.clock = clock  # raises when the scan's time budget is spent
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}
        self.result = MachineResult(start=stream.tell())

    # -- decoding ---------------------------------------------------------------------------
    def _read_arg(self, op: pickletools.OpcodeInfo) -> Any:
        desc = op.arg
        assert desc is not None
        if desc.name in _LARGE_ARGS:
            width = 8 if desc.name.endswith("8") else 4
            raw = self.stream.read(width)
            if len(raw) != width:
                raise ValueError(f"truncated length of {op.name}")
            length = int.from_bytes(raw, "little", signed=desc.name == "string4")
            if length < 0:
                raise ValueError(f"negative length in {op.name}")
            start = self.stream.tell()
            if length > _INLINE_LIMIT:
                end = self.stream.seek(0, io.SEEK_END)
                if start + length > end:
                    raise ValueError(f"{op.name} runs past the end of the data")
                self.stream.seek(start + length)
                self.result.skipped_bytes += length
                return BytesRef(start, length)
            data = self.stream.read(length)
            if len(data) != length:
                raise ValueError(f"{op.name} runs past the end of the data")
            if desc.name.startswith("unicode"):
                return data.decode("utf-8", "surrogatepass")
            if desc.name == "string4":
                return data.decode("latin-1")
            return data
        return desc.reader(self.stream)

    def run(self) -> MachineResult:
        res = self.result
        stream = self.stream
        read, tell = stream.read, stream.tell
        stack, memo, table = self.stack, self.memo, _TABLE
        decode, clock = _DECODE, self.clock
        push = stack.append
        mark, sized = _MARK, _SIZED
        k_const, k_memoize, k_put, k_get, k_mark = _K_CONST, _K_MEMOIZE, _K_PUT, _K_GET, _K_MARK
        k_single, k_tuple_n, k_empty, k_stop = _K_SINGLE, _K_TUPLE_N, _K_EMPTY, _K_STOP
        arg: Any
        pos = res.start
        ops = res.ops
        try:
            while True:
                pos = tell()
                code = read(1)
                decoded = decode.get(code)
                if decoded is None:
                    if not code:
                        raise _Broken("stream ended before STOP", pos)
                    raise _Broken(f"unknown opcode {code!r}", pos)
                name, op, reader, kind, extra = decoded
                if reader is None:
                    arg = None
                else:
                    try:
                        arg = self._read_arg(op) if reader is sized else reader(stream)
                    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
                        raise _Broken(f"bad argument to {name}: {exc}", pos) from None
                ops += 1
                if not ops & 0xFFFF:  # checked every 65,536 opcodes: cheap, and soon enough
                    res.ops = ops
                    if clock is not None:
                        clock()
                    if ops > _MAX_OPS:
                        raise _Broken("more opcodes than the scan bound", pos)
                # The commonest opcodes are played inline, most frequent first; the rest go
                # through the table.
                if kind is k_const:
                    push(arg)
                elif kind is k_memoize:
                    if not stack or stack[-1] is mark:
                        raise _Broken("stack underflow", pos)
                    memo[len(memo)] = stack[-1]
                elif kind is k_put:
                    if not stack or stack[-1] is mark:
                        raise _Broken("stack underflow", pos)
                    memo[arg] = stack[-1]
                elif kind is k_get:
                    if arg not in memo:
                        raise _Broken(f"memo key {arg} missing", pos)
                    push(memo[arg])
                elif kind is k_mark:
                    push(mark)
                elif kind is k_single:
                    push(extra)
                elif kind is k_tuple_n:
                    if len(stack) < extra or mark in stack[-extra:]:
                        raise _Broken("stack underflow", pos)
                    items = stack[-extra:]
                    del stack[-extra:]
                    push(Seq("tuple", items))
                elif kind is k_empty:
                    push(Seq(extra, []))
                elif kind is k_stop:
                    res.ops = ops
                    self._pop(pos)
                    res.end = tell()
                    return res
                else:
                    res.ops = ops
                    table[name](self, name, arg, pos)
        except _Broken as exc:
            res.error, res.error_pos = str(exc), exc.pos
        res.ops = ops
        return res

    # -- stack helpers ----------------------------------------------------------------------
    def _pop(self, pos: int) -> Any:
        if not self.stack or self.stack[-1] is _MARK:
            raise _Broken("stack underflow", pos)
        return self.stack.pop()

    def _pop_mark(self, pos: int) -> list[Any]:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i] is _MARK:
                items = self.stack[i + 1 :]
                del self.stack[i:]
                return items
        raise _Broken("MARK expected", pos)

    def _top(self, pos: int) -> Any:
        if not self.stack or self.stack[-1] is _MARK:
            raise _Broken("stack underflow", pos)
        return self.stack[-1]

    def _import(self, module: Any, name: Any, pos: int, opcode: str, memo: bool) -> Global:
        if isinstance(module, str) and isinstance(name, str):
            if not (_dotted(module) and _dotted(name)):
                raise _Broken(f"{opcode} names no importable object ({module!r}, {name!r})", pos)
            self.result.imports.append(ImportSite(module, name, pos, opcode, memo))
            return Global(module, name, pos)
        self.result.imports.append(ImportSite(None, None, pos, opcode, memo))
        return Global("?", "?", pos)

    def _call(self, callee: Any, args: Any, pos: int, opcode: str) -> Obj:
        self.result.calls.append(CallSite(callee, args, pos, opcode))
        return Obj(callee, args, pos)

    # -- the opcodes (one method per group; `_TABLE` maps each opcode name to one) ----------
    def _const(self, name: str, arg: Any, pos: int) -> None:
        self.stack.append(_SINGLETONS[name])

    def _empty(self, name: str, arg: Any, pos: int) -> None:
        self.stack.append(Seq(_KINDS[name], []))

    def _from_mark(self, name: str, arg: Any, pos: int) -> None:
        self.stack.append(Seq(_KINDS[name], self._pop_mark(pos)))

    def _dict(self, name: str, arg: Any, pos: int) -> None:
        items = self._pop_mark(pos)
        self.stack.append(Seq("dict", list(zip(items[::2], items[1::2], strict=False))))

    def _tuple_n(self, name: str, arg: Any, pos: int) -> None:
        n = _TUPLE_N[name]
        if len(self.stack) < n or _MARK in self.stack[-n:]:
            raise _Broken("stack underflow", pos)
        items = self.stack[-n:]
        del self.stack[-n:]
        self.stack.append(Seq("tuple", items))

    def _append(self, name: str, arg: Any, pos: int) -> None:
        value = self._pop(pos)
        self._extend(self._top(pos), [value])

    def _appends(self, name: str, arg: Any, pos: int) -> None:
        items = self._pop_mark(pos)
        self._extend(self._top(pos), items)

    def _setitem(self, name: str, arg: Any, pos: int) -> None:
        value, key = self._pop(pos), self._pop(pos)
        self._extend(self._top(pos), [(key, value)])

    def _setitems(self, name: str, arg: Any, pos: int) -> None:
        items = self._pop_mark(pos)
        self._extend(self._top(pos), list(zip(items[::2], items[1::2], strict=False)))

    def _pop_op(self, name: str, arg: Any, pos: int) -> None:
        if self.stack and self.stack[-1] is _MARK:
            self.stack.pop()
        else:
            self._pop(pos)

    def _pop_mark_op(self, name: str, arg: Any, pos: int) -> None:
        self._pop_mark(pos)

    def _dup(self, name: str, arg: Any, pos: int) -> None:
        self.stack.append(self._top(pos))

    def _proto(self, name: str, arg: Any, pos: int) -> None:
        self.result.protocol = int(arg)

    def _frame(self, name: str, arg: Any, pos: int) -> None:
        pass

    def _global(self, name: str, arg: Any, pos: int) -> None:
        module, _, qual = str(arg).partition(" ")
        g = self._import(module, qual, pos, name, False)
        if name == "INST":
            self.stack.append(self._call(g, Seq("tuple", self._pop_mark(pos)), pos, name))
        else:
            self.stack.append(g)

    def _stack_global(self, name: str, arg: Any, pos: int) -> None:
        gname, gmodule = self._pop(pos), self._pop(pos)
        self.stack.append(self._import(gmodule, gname, pos, name, True))

    def _reduce(self, name: str, arg: Any, pos: int) -> None:
        args, callee = self._pop(pos), self._pop(pos)
        self.stack.append(self._call(callee, args, pos, name))

    def _newobj_ex(self, name: str, arg: Any, pos: int) -> None:
        kwargs, args, cls = self._pop(pos), self._pop(pos), self._pop(pos)
        self.stack.append(self._call(cls, Seq("tuple", [args, kwargs]), pos, name))

    def _obj(self, name: str, arg: Any, pos: int) -> None:
        items = self._pop_mark(pos)
        if not items:
            raise _Broken("OBJ without a class", pos)
        self.stack.append(self._call(items[0], Seq("tuple", items[1:]), pos, name))

    def _build(self, name: str, arg: Any, pos: int) -> None:
        state = self._pop(pos)
        target = self._top(pos)
        if isinstance(target, Global):
            self.result.builds_on_globals.append((target, pos))
        elif isinstance(target, Obj):
            target.state = state
            if self.build_hook is not None:
                self.build_hook(self, target, self.stream)

    def _persid(self, name: str, arg: Any, pos: int) -> None:
        pid = self._pop(pos) if name == "BINPERSID" else arg
        self.result.persistent_ids += 1
        # Legacy torch.save stores a module's class as ('module', cls, file, source) and its
        # persistent_load hands back `cls`: follow it, so calling it is judged as a call of cls.
        items = pid.items if isinstance(pid, Seq) else []
        if len(items) > 1 and items[0] == "module" and isinstance(items[1], Global):
            self.stack.append(items[1])
        else:
            self.stack.append(_Opaque("persistent"))

    def _ext(self, name: str, arg: Any, pos: int) -> None:
        self.result.extensions.append((int(arg), pos))
        self.stack.append(Global("?ext", str(arg), pos))

    def _buffer(self, name: str, arg: Any, pos: int) -> None:
        if name == "NEXT_BUFFER":
            raise _Broken("out-of-band buffer without a buffer provider", pos)

    def _step(self, name: str, arg: Any, pos: int) -> None:
        _TABLE[name](self, name, arg, pos)

    @staticmethod
    def _extend(target: Any, items: list[Any]) -> None:
        if isinstance(target, Seq):
            target.items.extend(items)

    def skip(self, count: int) -> None:
        """Consume raw bytes a format's own unpickler reads between opcodes."""
        here = self.stream.tell()
        end = self.stream.seek(0, io.SEEK_END)
        if here + count > end:
            raise _Broken("embedded array runs past the end of the data", here)
        self.stream.seek(here + count)
        self.result.skipped_bytes += count


_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_CONST_OPS = frozenset(
    [
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "BYTEARRAY8",
        "UNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "FLOAT",
        "BINFLOAT",
    ]
)


_SINGLETONS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_KINDS = {
    "EMPTY_LIST": "list",
    "EMPTY_TUPLE": "tuple",
    "EMPTY_DICT": "dict",
    "EMPTY_SET": "set",
    "LIST": "list",
    "TUPLE": "tuple",
    "FROZENSET": "frozenset",
}
_TUPLE_N = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_M = PickleMachine
_TABLE: dict[str, Callable[[PickleMachine, str, Any, int], None]] = {
    **dict.fromkeys(("NONE", "NEWTRUE", "NEWFALSE"), _M._const),
    **dict.fromkeys(("EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_DICT", "EMPTY_SET"), _M._empty),
    **dict.fromkeys(("LIST", "TUPLE", "FROZENSET"), _M._from_mark),
    **dict.fromkeys(("TUPLE1", "TUPLE2", "TUPLE3"), _M._tuple_n),
    **dict.fromkeys(("APPENDS", "ADDITEMS"), _M._appends),
    **dict.fromkeys(("GLOBAL", "INST"), _M._global),
    **dict.fromkeys(("REDUCE", "NEWOBJ"), _M._reduce),
    **dict.fromkeys(("PERSID", "BINPERSID"), _M._persid),
    **dict.fromkeys(("EXT1", "EXT2", "EXT4"), _M._ext),
    **dict.fromkeys(("NEXT_BUFFER", "READONLY_BUFFER"), _M._buffer),
    "DICT": _M._dict,
    "APPEND": _M._append,
    "SETITEM": _M._setitem,
    "SETITEMS": _M._setitems,
    "POP": _M._pop_op,
    "POP_MARK": _M._pop_mark_op,
    "DUP": _M._dup,
    "PROTO": _M._proto,
    "FRAME": _M._frame,
    "STACK_GLOBAL": _M._stack_global,
    "NEWOBJ_EX": _M._newobj_ex,
    "OBJ": _M._obj,
    "BUILD": _M._build,
}


def _uint1(f: IO[bytes]) -> int:
    data = f.read(1)
    if not data:
        raise ValueError("not enough data in stream to read uint1")
    return data[0]


def _short_text(f: IO[bytes]) -> str:
    n = _uint1(f)
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"expected {n} bytes in a unicodestring1, only {len(data)} remain")
    return data.decode("utf-8", "surrogatepass")


# The hottest argument readers, equivalent to pickletools' and without its per-call checks.
_FAST_READERS = {"uint1": _uint1, "unicodestring1": _short_text}


def _quiet(reader: Any) -> Any:
    """pickletools unescapes STRING arguments with escape_decode, which warns on hostile bytes.

    A warning is not a verdict (and is an error under `-W error`): the bytes are data.
    """

    def read(stream: Any) -> Any:
        here = stream.tell()
        escaped = b"\\" in stream.readline()
        stream.seek(here)
        if not escaped:  # no backslash, nothing to unescape, no warning: skip the costly guard
            return reader(stream)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return reader(stream)

    return read


# Arguments whose pickletools reader unescapes text (and can warn on odd escapes).
_ESCAPED = frozenset({"stringnl", "unicodestringnl"})


_SIZED = _Opaque("sized")  # the reader slot of an argument `_read_arg` decodes


def _reader(op: pickletools.OpcodeInfo) -> Any:
    if op.arg is None:
        return None
    if op.arg.name in _LARGE_ARGS:
        return _SIZED
    if op.arg.name in _ESCAPED:
        return _quiet(op.arg.reader)
    return _FAST_READERS.get(op.arg.name, op.arg.reader)


# opcode byte -> (name, info, reader for small fixed arguments or None for sized ones)
# How the run loop plays an opcode: inline kinds, or _OTHER through the table.
_K_CONST, _K_PUT, _K_GET, _K_MARK, _K_MEMOIZE, _K_STOP, _K_OTHER = (
    "const",
    "put",
    "get",
    "mark",
    "memoize",
    "stop",
    "other",
)
# Argument-free opcodes that only push: a singleton, an empty container, a small tuple.
_K_SINGLE, _K_EMPTY, _K_TUPLE_N = "single", "empty", "tuple_n"


def _kind(name: str) -> str:
    if name in _SINGLETONS:
        return _K_SINGLE
    if name.startswith("EMPTY_"):
        return _K_EMPTY
    if name in _TUPLE_N:
        return _K_TUPLE_N
    if name in _CONST_OPS:
        return _K_CONST
    if name in _PUT_OPS:
        return _K_PUT
    if name in _GET_OPS:
        return _K_GET
    return {"MARK": _K_MARK, "MEMOIZE": _K_MEMOIZE, "STOP": _K_STOP}.get(name, _K_OTHER)


def _extra(name: str) -> Any:
    """What an inline kind needs: the singleton's value, the container's kind, the size."""
    return _SINGLETONS.get(name, _KINDS.get(name, _TUPLE_N.get(name)))


_DECODE: dict[bytes, tuple[str, pickletools.OpcodeInfo, Any, str, Any]] = {
    op.code.encode("latin-1"): (op.name, op, _reader(op), _kind(op.name), _extra(op.name))
    for op in pickletools.opcodes
}


def _dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def broken(message: str, pos: int) -> Exception:
    """Let a build hook stop the machine the way the real loader would fail there."""
    return _Broken(message, pos)
