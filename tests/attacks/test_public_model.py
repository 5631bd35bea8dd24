"""Public model weights are read as data only, checked, and computed exactly like the original.

The files are written by the reference writers (`safetensors.numpy.save_file`,
`np.savez`), from a real MLP trained here, so the reader is held to the
format as others produce it, not to a copy of its own assumptions.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from bastion.attacks.public_model import load_public_model
from bastion.attacks.surrogate import input_gradient
from bastion.errors import ConfigError, IntegrityError, ManifestError
from bastion.manifest import parse_manifest
from tests.attacks.attack_targets import torch_layout


@pytest.fixture(scope="module")
def tensors(public_mlp: Any) -> dict[str, np.ndarray]:
    return torch_layout(public_mlp, np.float64)


def test_safetensors_computes_what_the_original_model_computes(
    tmp_path: Path, public_mlp: Any, tensors: dict[str, np.ndarray], digits: dict[str, Any]
) -> None:
    path = tmp_path / "public.safetensors"
    save_file(tensors, str(path), metadata={"activation": "relu"})
    model = load_public_model(path)
    x = digits["x_test"][:100]
    assert np.array_equal(model.predict(x), public_mlp.predict(x))
    y = digits["y_test"][:100]
    assert np.allclose(input_gradient(model, x, y), input_gradient(public_mlp, x, y))


def test_npz_and_half_precision_read_too(
    tmp_path: Path, public_mlp: Any, digits: dict[str, Any]
) -> None:
    npz = tmp_path / "public.npz"
    np.savez(npz, **torch_layout(public_mlp, np.float32))
    half = tmp_path / "half.safetensors"
    save_file(torch_layout(public_mlp, np.float16), str(half))
    x = digits["x_test"][:200]
    want = public_mlp.predict(x)
    assert np.array_equal(load_public_model(npz, fmt="npz").predict(x), want)
    assert np.mean(load_public_model(half).predict(x) == want) > 0.97


def test_output_units_map_to_declared_classes(
    tmp_path: Path, public_mlp: Any, tensors: dict[str, np.ndarray], digits: dict[str, Any]
) -> None:
    # the file's unit i means class 9 - i: predictions must come out in the target's classes
    flipped = dict(tensors)
    flipped["2.weight"] = tensors["2.weight"][::-1].copy()
    flipped["2.bias"] = tensors["2.bias"][::-1].copy()
    path = tmp_path / "flipped.safetensors"
    save_file(flipped, str(path))
    model = load_public_model(path, classes=list(range(9, -1, -1)))
    x = digits["x_test"][:100]
    assert np.array_equal(model.predict(x), public_mlp.predict(x))


def test_a_pinned_digest_is_checked(tmp_path: Path, tensors: dict[str, np.ndarray]) -> None:
    path = tmp_path / "public.safetensors"
    save_file(tensors, str(path))
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_public_model(path, sha256=good.upper()).activation == "relu"
    with pytest.raises(IntegrityError, match="pins"):
        load_public_model(path, sha256="0" * 64)


class _Marker:
    """Harmless payload: unpickling it would create a marker file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.touch, (self.path,))


def _header(entries: dict[str, Any], body: bytes = b"") -> bytes:
    raw = json.dumps(entries).encode()
    return struct.pack("<Q", len(raw)) + raw + body


BAD = {
    "missing": (None, "cannot be read"),
    "empty": (b"", "shorter than"),
    "huge header length": (struct.pack("<Q", 1 << 40) + b"{}", "impossible"),
    "header not json": (struct.pack("<Q", 4) + b"\xff\xfe{[", "not JSON"),
    "int tensor": (
        _header({"0.weight": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8)),
        "not a float type",
    ),
    "offsets past the end": (
        _header({"0.weight": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(4)),
        "data_offsets",
    ),
    "size mismatch": (
        _header({"0.weight": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),
        "does not match",
    ),
    "no bias": (
        _header({"0.weight": {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]}}, bytes(8)),
        "matching 1-D bias",
    ),
    "batch-norm buffer": (
        _header({"bn.mean": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)),
        "not a '<layer>.weight'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_file_is_a_config_error_naming_it(tmp_path: Path, case: str) -> None:
    content, message = BAD[case]
    path = tmp_path / "public.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as err:
        load_public_model(path)
    assert err.value.path == str(path) and err.value.exit_code == 2


def test_layers_that_do_not_chain_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "public.safetensors"
    save_file(
        {
            "0.weight": np.zeros((5, 4), np.float32),
            "0.bias": np.zeros(5, np.float32),
            "1.weight": np.zeros((3, 6), np.float32),
            "1.bias": np.zeros(3, np.float32),
        },
        str(path),
    )
    with pytest.raises(ConfigError, match="takes 6 inputs, the layer before gives 5"):
        load_public_model(path)


def test_classes_must_match_the_output_units(tmp_path: Path) -> None:
    path = tmp_path / "public.safetensors"
    layer = {"0.weight": np.zeros((3, 4), np.float32), "0.bias": np.zeros(3, np.float32)}
    save_file(layer, str(path))
    with pytest.raises(ConfigError, match="3 distinct classes"):
        load_public_model(path, classes=[0, 1])
    with pytest.raises(ConfigError, match="3 distinct classes"):
        load_public_model(path, classes=[0, 1, 1])


def test_pickles_are_refused_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    obj = tmp_path / "object.npz"
    np.savez(obj, **{"0.weight": np.array([_Marker(marker)], dtype=object)})
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps({"0.weight": _Marker(marker)}))
    for path in (obj, raw):
        with pytest.raises(ConfigError, match="without unpickling"):
            load_public_model(path, fmt="npz")
    with pytest.raises(ConfigError, match="cannot be read without running code"):
        load_public_model(raw, fmt="pickle")
    assert not marker.exists()


def test_the_manifest_names_a_public_model_in_data_only_formats() -> None:
    text = """version: 1
system: {name: s}
elements:
  - id: m
    type: model
    public_model: {path: base.safetensors, activation: tanh, classes: [0, 1]}
"""
    model = parse_manifest(text).element("m")
    public = getattr(model, "public_model", None)
    assert public is not None and public.format == "safetensors" and public.classes == (0, 1)
    with pytest.raises(ManifestError, match="format"):
        parse_manifest(text.replace("activation: tanh", "format: pickle"))
