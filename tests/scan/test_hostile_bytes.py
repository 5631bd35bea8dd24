"""Whatever the bytes, a scan ends with a verdict: no exception, no hang, never loads."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pickle_asm import Asm, ZipSpec
from scan_corpus import onnx_model, safetensors

from bastion.scan import ScanLimits, Scanner, Verdict


def _seeds() -> list[bytes]:
    evil = Asm(2).call("os", "system", "true").stop()
    npy = io.BytesIO()
    np.save(npy, np.arange(16))
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w") as tar:
        info = tarfile.TarInfo("m.pkl")
        info.size = len(evil)
        tar.addfile(info, io.BytesIO(evil))
    return [
        evil,
        pickle.dumps({"a": [1, 2.0, "x", b"y"], "b": (None, True)}, 4),
        npy.getvalue(),
        ZipSpec().add("archive/data.pkl", evil).add("archive/version", b"3").build(),
        gzip.compress(tbuf.getvalue()),
        safetensors({"w": (np.ones(3, np.float32), "F32")}),
        onnx_model(domain="x"),
    ]


SEEDS = _seeds()
LIMITS = ScanLimits(max_seconds=20.0)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut] if draw(st.booleans()) else data)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.one_of(mutated(), st.binary(max_size=2048)))
def test_any_bytes_get_a_verdict(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "sample"
    path.write_bytes(data)
    result = Scanner(LIMITS).scan_file(path)
    assert isinstance(result.verdict, Verdict)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_truncation_of_a_malicious_or_model_seed_is_handled(
    tmp_path: Path, seed: int
) -> None:
    data = SEEDS[seed]
    scanner = Scanner(LIMITS)
    for cut in range(0, len(data), max(1, len(data) // 40)):
        path = tmp_path / f"cut{cut}"
        path.write_bytes(data[:cut])
        scanner.scan_file(path)


def test_odd_escapes_in_a_string_opcode_are_data_not_warnings(tmp_path: Path) -> None:
    """Found by the property test in CI: `S'\\q'` made pickletools warn, an error under -W."""
    path = tmp_path / "escape.pkl"
    path.write_bytes(b"S'\\q'\np0\n.")
    result = Scanner(LIMITS).scan_file(path)
    assert isinstance(result.verdict, Verdict)
