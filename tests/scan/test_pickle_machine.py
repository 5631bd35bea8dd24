"""The simulated unpickler: resolves what the real one resolves, stops where it stops."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from pickle_asm import Asm

from bastion.scan.pickle_analyser import analyse_pickle
from bastion.scan.pickle_machine import BytesRef, PickleMachine

_ALL = ("python", "numpy", "sklearn", "joblib", "torch")


def _rules(data: bytes, **kw: object) -> list[tuple[str, str]]:
    rep = analyse_pickle(io.BytesIO(data), member=None, frameworks=_ALL, **kw)  # type: ignore[arg-type]
    return [(i.rule, i.key) for i in rep.issues]


def test_memo_overwrite_resolves_to_the_value_at_use_time() -> None:
    a = Asm(4).s("collections").put(0).s("OrderedDict").put(1).raw(b"00")
    a.s("os").put(0).raw(b"0").get(0).get(1).sg().empty_tuple().reduce()
    res = PickleMachine(io.BytesIO(a.stop())).run()
    assert [(i.module, i.name, i.from_memo) for i in res.imports] == [("os", "OrderedDict", True)]


def test_memoize_indexes_follow_the_memo_length() -> None:
    a = Asm(4).s("builtins").memoize().s("int").memoize().raw(b"00")
    a.s("os").memoize().raw(b"0").get(2).get(1).sg().raw(b"0").get(0).get(1).sg()
    res = PickleMachine(io.BytesIO(a.stop())).run()
    assert [(i.module, i.name) for i in res.imports] == [("os", "int"), ("builtins", "int")]


def test_broken_stream_keeps_everything_decoded_before_the_break() -> None:
    data = Asm(2).call("os", "system", "x").stop()[:-1] + b"\xff"
    res = PickleMachine(io.BytesIO(data)).run()
    assert not res.complete and res.error_pos == len(data) - 1
    assert res.imports and res.imports[0].module == "os"
    assert ("S106", "broken@0") in _rules(data)


def test_stack_underflow_stops_like_the_real_loader() -> None:
    res = PickleMachine(io.BytesIO(b"\x80\x02R.")).run()
    assert res.error == "stack underflow"


def test_invalid_module_names_stop_the_stream_instead_of_counting_as_imports() -> None:
    res = PickleMachine(io.BytesIO(b"import os\nprint(1)\n")).run()
    assert res.imports == [] and res.error is not None


def test_large_byte_strings_stay_on_disk() -> None:
    blob = b"\0" * (3 << 20)
    data = pickle.dumps(blob, protocol=4)
    machine = PickleMachine(io.BytesIO(data))
    res = machine.run()
    assert res.complete and res.skipped_bytes == len(blob)
    assert isinstance(machine.memo[0], BytesRef)


def test_a_nested_pickle_inside_a_large_bytes_argument_is_still_analysed() -> None:
    inner = Asm(2).call("os", "system", "x").stop() + b"\0" * (2 << 20)
    data = Asm(2).glob("pickle", "loads").mark().by(inner).tup().reduce().stop()
    keys = [k for r, k in _rules(data) if r == "S101"]
    assert keys == ["pickle.loads", "os.system"]


def test_protocol_below_3_applies_the_python2_name_mapping_only_there() -> None:
    assert ("S101", "builtins.eval") in _rules(Asm(2).call("__builtin__", "eval", "1").stop())
    assert _rules(Asm(4).call("copy_reg", "_reconstructor").stop())[0][0] == "S102"
    assert _rules(Asm(2).call("copy_reg", "_reconstructor").stop()) == []


def test_stacked_pickles_are_each_judged_and_trailing_data_noted() -> None:
    data = pickle.dumps(1, 2) + pickle.dumps(2, 2) + b"\x00\x01\x02\x03"
    rep = analyse_pickle(io.BytesIO(data), member=None, frameworks=_ALL)
    assert rep.streams == 2 and rep.trailing_bytes == 4
    assert [i.rule for i in rep.issues] == ["S107"]


def test_joblib_arrays_between_opcodes_are_skipped_by_their_declared_size() -> None:
    import joblib

    buf = io.BytesIO()
    joblib.dump({"a": np.arange(1000, dtype=np.int64), "b": np.ones((7, 3), np.float32)}, buf)
    rep = analyse_pickle(io.BytesIO(buf.getvalue()), member=None, frameworks=_ALL)
    assert rep.is_pickle and rep.issues == [] and rep.streams == 1
    assert "joblib.numpy_pickle.NumpyArrayWrapper" in rep.allowed


def test_joblib_array_running_past_the_end_is_malformed() -> None:
    import joblib

    buf = io.BytesIO()
    joblib.dump(np.arange(100, dtype=np.int64), buf)
    truncated = buf.getvalue()[:-300]
    assert [r for r, _ in _rules(truncated)] == ["S106"]


def test_calls_of_computed_callables_are_flagged() -> None:
    a = Asm(2).glob("collections", "OrderedDict").empty_tuple().reduce().empty_tuple().reduce()
    assert [r for r, _ in _rules(a.stop())] == ["S104"]


def test_unresolvable_nested_argument_is_suspicious() -> None:
    a = Asm(2).glob("pickle", "loads").mark().glob("collections", "OrderedDict").empty_tuple()
    a.reduce().tup().reduce()
    assert "S105" in [r for r, _ in _rules(a.stop())]


def test_probe_mode_ignores_plain_data() -> None:
    rep = analyse_pickle(io.BytesIO(b"PNG\r\n\x1a\n...."), member=None, frameworks=_ALL, probe=True)
    assert not rep.is_pickle and rep.issues == []


def test_legacy_torch_module_class_behind_a_persistent_id_is_followed() -> None:
    a = Asm(2).mark().s("module").glob("torch.nn.modules.linear", "Linear").s("f.py").s("src")
    a.tup().raw(b"Q").empty_tuple().newobj()
    rep = analyse_pickle(io.BytesIO(a.stop()), member=None, frameworks=_ALL)
    assert rep.issues == [] and "torch.nn.modules.linear.Linear" in rep.allowed
    evil = Asm(2).mark().s("module").glob("os", "system").s("f.py").s("src").tup().raw(b"Q")
    evil.mark().s("x").tup().reduce()
    assert [r for r, _ in _rules(evil.stop())] == ["S101"]


def test_calling_an_opaque_persistent_object_is_flagged() -> None:
    a = Asm(2).mark().s("storage").tup().raw(b"Q").empty_tuple().reduce()
    assert [r for r, _ in _rules(a.stop())] == ["S104"]


def test_an_endless_stream_of_opcodes_stops_at_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bastion.scan import pickle_machine

    monkeypatch.setattr(pickle_machine, "_MAX_OPS", 100_000)
    data = b"\x80\x04" + b"N0" * 150_000 + b"N."  # 300,002 harmless opcodes
    res = PickleMachine(io.BytesIO(data)).run()
    assert res.error == "more opcodes than the scan bound"
    # checked every 65,536 opcodes: it stops at the first check past the bound
    assert 100_000 < res.ops <= 100_000 + 65_536
    # and the bound is only a bound: the same stream under it plays to the end
    monkeypatch.setattr(pickle_machine, "_MAX_OPS", 1_000_000)
    assert PickleMachine(io.BytesIO(data)).run().complete
