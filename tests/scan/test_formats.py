"""Format-specific checks: legacy Keras HDF5, safetensors and npy edge cases."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from scan_corpus import keras_config, safetensors

from bastion.scan import Scanner, Verdict
from bastion.scan.formats import Format, sniff


def _h5(path: Path, config: dict[str, object] | None) -> Path:
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        if config is not None:
            f.attrs["model_config"] = json.dumps(config)
        f.create_dataset("model_weights/dense/kernel", data=np.ones((4, 2)))
    return path


def test_legacy_keras_h5_lambda_is_malicious(tmp_path: Path) -> None:
    path = _h5(tmp_path / "m.h5", keras_config(lambda_layer=True))
    result = Scanner().scan_file(path)
    assert result.verdict is Verdict.MALICIOUS
    assert [i.rule for i in result.issues] == ["S303"]


def test_legacy_keras_h5_plain_model_is_clean(tmp_path: Path) -> None:
    result = Scanner().scan_file(_h5(tmp_path / "m.h5", keras_config()))
    assert result.verdict is Verdict.CLEAN and result.artifacts[0].format == "hdf5"


def test_hdf5_weights_without_config_are_clean(tmp_path: Path) -> None:
    assert Scanner().scan_file(_h5(tmp_path / "w.h5", None)).verdict is Verdict.CLEAN


def test_safetensors_hole_between_tensors_is_suspicious(tmp_path: Path) -> None:
    good = safetensors({"a": (np.ones(2, np.float32), "F32")})
    n = int.from_bytes(good[:8], "little")
    header = json.loads(good[8 : 8 + n])
    header["a"]["data_offsets"] = [4, 12]
    text = json.dumps(header).encode()
    path = tmp_path / "x.bin"
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"\0" * 12)
    result = Scanner().scan_file(path)
    assert result.verdict is Verdict.SUSPICIOUS and "expected 0" in result.issues[0].message


def test_safetensors_duplicate_keys_are_suspicious(tmp_path: Path) -> None:
    text = b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {}}'
    path = tmp_path / "d.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"\0" * 4)
    assert Scanner().scan_file(path).verdict is Verdict.SUSPICIOUS


def test_truncated_npy_is_not_clean(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ones(100))
    path = tmp_path / "t.npy"
    path.write_bytes(buf.getvalue()[:-80])
    result = Scanner().scan_file(path)
    assert result.verdict is Verdict.COULD_NOT_SCAN and result.issues[0].rule == "S301"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x80\x04\x95", {Format.PICKLE}),
        (b"\x93NUMPY\x01\x00", {Format.NPY}),
        (b"\x1f\x8b\x08\x00", {Format.GZIP}),
        (b"BZh91AY&SY", {Format.BZ2}),
        (b"\xfd7zXZ\x00\x00", {Format.XZ}),
        (b"7z\xbc\xaf\x27\x1c\x00", {Format.SEVENZIP}),
        (b"\x89HDF\r\n\x1a\n", {Format.HDF5}),
        (b"hello world", set()),
    ],
)
def test_sniff_by_magic(head: bytes, expected: set[Format]) -> None:
    assert sniff(io.BytesIO(head + b"\0" * 64)) == expected


def test_seven_zip_is_recognised_and_not_called_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"7z\xbc\xaf\x27\x1c" + b"\0" * 64)
    result = Scanner().scan_file(path)
    assert result.verdict is Verdict.COULD_NOT_SCAN and result.issues[0].rule == "S307"
