"""Public model weights an attacker can download, read as data only, with input gradients.

A transfer attack needs no query at all to craft its adversarials when a model
close to the target is public (the base it was fine-tuned from, a paper's
release). Its weights are read only from data-only formats — safetensors,
parsed here (an 8-byte header length, a JSON header, raw little-endian
tensors), or an `.npz` loaded with `allow_pickle=False` — so a hostile file
can fail to load but never run code. The model is an MLP: `<name>.weight`
(out x in, as torch stores a linear layer) and `<name>.bias` tensors, layers
in natural order of their names, one activation between layers.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import ConfigError, IntegrityError

__all__ = ["ACTIVATIONS", "PublicMLP", "load_public_model"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ACTIVATIONS = ("relu", "tanh", "logistic", "identity")
_ALIASES = {"sigmoid": "logistic", "linear": "identity", "none": "identity"}
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}
_MAX_HEADER = 64 * 1024 * 1024
_HINT = "public_model: a .safetensors or .npz of '<layer>.weight' / '<layer>.bias' tensors"


@dataclass(frozen=True)
class PublicMLP:
    """An MLP's weights in scikit-learn's layout (`coefs_` are in x out), for `pgd`."""

    coefs_: tuple[FloatArray, ...]
    intercepts_: tuple[FloatArray, ...]
    activation: str
    classes_: IntArray
    source: str = "<public model>"

    @property
    def n_features_in_(self) -> int:
        return int(self.coefs_[0].shape[0])

    def predict(self, x: FloatArray) -> IntArray:
        from bastion.attacks.surrogate import forward

        logits = forward(self, np.asarray(x, dtype=np.float64))
        if logits.shape[1] == 1:
            return np.asarray(self.classes_[(logits[:, 0] > 0).astype(np.int64)])
        return np.asarray(self.classes_[np.argmax(logits, axis=1)])


def _bad(message: str, path: Path) -> ConfigError:
    return ConfigError(message, path=str(path), hint=_HINT)


def _safetensors(data: bytes, path: Path) -> tuple[dict[str, FloatArray], dict[str, Any]]:
    if len(data) < 8:
        raise _bad("not a safetensors file (shorter than its 8-byte header length)", path)
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(len(data) - 8, _MAX_HEADER):
        raise _bad(f"not a safetensors file (header length {size} is impossible)", path)
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, ValueError):
        raise _bad("not a safetensors file (its header is not JSON)", path) from None
    if not isinstance(header, dict):
        raise _bad("not a safetensors file (its header is not a JSON object)", path)
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict):
        raise _bad("safetensors __metadata__ is not an object", path)
    body = memoryview(data)[8 + size :]
    tensors = {}
    for name, spec in header.items():
        tensors[str(name)] = _tensor(str(name), spec, body, path)
    return tensors, meta


def _tensor(name: str, spec: Any, body: memoryview, path: Path) -> FloatArray:
    if not isinstance(spec, dict):
        raise _bad(f"tensor {name!r}: header entry is not an object", path)
    dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if dtype not in _DTYPES:
        raise _bad(f"tensor {name!r}: dtype {dtype!r} is not a float type", path)
    ok_shape = isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)
    ok_offsets = (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) for o in offsets)
        and 0 <= offsets[0] <= offsets[1] <= len(body)
    )
    if not ok_shape or not ok_offsets:
        raise _bad(f"tensor {name!r}: bad shape or data_offsets", path)
    assert isinstance(shape, list) and isinstance(offsets, list)
    raw_type = np.dtype(_DTYPES[dtype])
    count = int(np.prod(shape, dtype=np.int64))
    if offsets[1] - offsets[0] != count * raw_type.itemsize:
        raise _bad(f"tensor {name!r}: data size does not match its shape and dtype", path)
    raw = np.frombuffer(body[offsets[0] : offsets[1]], dtype=raw_type)
    if dtype == "BF16":  # the top half of a float32
        raw = (raw.astype(np.uint32) << 16).view(np.float32)
    return np.asarray(raw.reshape(shape), dtype=np.float64)


def _npz(path: Path) -> dict[str, FloatArray]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # ValueError: a pickled file, which would need unpickling: refused
        raise _bad(f"cannot read as an .npz without unpickling: {exc}", path) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise _bad("not an .npz archive (a single .npy array)", path)
    try:
        with loaded:
            arrays = {k: np.asarray(loaded[k]) for k in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _bad(f"cannot read as an .npz without unpickling: {exc}", path) from None
    out = {}
    for name, arr in arrays.items():
        if arr.dtype.kind not in "fiu":
            raise _bad(f"array {name!r} has dtype {arr.dtype}; only numbers are weights", path)
        out[name] = np.asarray(arr, dtype=np.float64)
    return out


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _layers(tensors: dict[str, FloatArray], path: Path) -> list[tuple[FloatArray, FloatArray]]:
    groups: dict[str, dict[str, FloatArray]] = {}
    for name, arr in tensors.items():
        prefix, _, kind = name.rpartition(".")
        if kind not in ("weight", "bias") or not prefix:
            raise _bad(f"tensor {name!r} is not a '<layer>.weight' or '<layer>.bias'", path)
        groups.setdefault(prefix, {})[kind] = arr
    if not groups:
        raise _bad("no layers in the file", path)
    layers: list[tuple[FloatArray, FloatArray]] = []
    for prefix in sorted(groups, key=_natural):
        g = groups[prefix]
        w, b = g.get("weight"), g.get("bias")
        if w is None or b is None or w.ndim != 2 or b.shape != (w.shape[0],):
            raise _bad(f"layer {prefix!r} needs a 2-D weight and a matching 1-D bias", path)
        if layers and layers[-1][0].shape[1] != w.shape[1]:
            have, want = w.shape[1], layers[-1][0].shape[1]
            raise _bad(f"layer {prefix!r} takes {have} inputs, the layer before gives {want}", path)
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise _bad(f"layer {prefix!r} has non-finite weights", path)
        layers.append((w.T.copy(), b))  # torch's out x in -> scikit-learn's in x out
    return layers


def _classes(
    layers: list[tuple[FloatArray, FloatArray]], classes: Sequence[int] | None, path: Path
) -> IntArray:
    units = layers[-1][0].shape[1]
    want = 2 if units == 1 else units
    cls = np.arange(want, dtype=np.int64) if classes is None else np.asarray(classes, np.int64)
    if cls.shape != (want,) or np.unique(cls).size != want:
        raise _bad(f"{want} distinct classes are needed for {units} output unit(s)", path)
    w, b = layers[-1]
    if units == 1:  # one logistic unit for the second class: keep it the larger
        if cls[0] > cls[1]:
            layers[-1] = (-w, -b)
        return np.sort(cls)
    order = np.argsort(cls)  # the gradient code looks classes up by binary search
    layers[-1] = (w[:, order], b[order])
    return cls[order]


def load_public_model(
    path: str | Path,
    *,
    fmt: str = "safetensors",
    sha256: str | None = None,
    activation: str | None = None,
    classes: Sequence[int] | None = None,
) -> PublicMLP:
    """Read and check a public model's weights; any problem is a ConfigError naming the file."""
    path = Path(path)
    if fmt not in ("safetensors", "npz"):
        raise _bad(f"format {fmt!r} cannot be read without running code", path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"public model weights cannot be read: {exc.strerror or exc}",
            path=str(path),
            hint="public_model.path is relative to the manifest's directory",
        ) from None
    if sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256.lower():
            raise IntegrityError(
                f"{path}: public model has sha256 {actual}, the manifest pins {sha256}",
                hint="the file changed since it was pinned: check where it came from",
            )
    meta: dict[str, Any] = {}
    if fmt == "safetensors":
        tensors, meta = _safetensors(data, path)
    else:
        tensors = _npz(path)
    act = str(activation or meta.get("activation") or "relu").lower()
    act = _ALIASES.get(act, act)
    if act not in ACTIVATIONS:
        raise _bad(f"activation {act!r} is not one of {', '.join(ACTIVATIONS)}", path)
    layers = _layers(tensors, path)
    cls = _classes(layers, classes, path)
    return PublicMLP(
        coefs_=tuple(w for w, _ in layers),
        intercepts_=tuple(b for _, b in layers),
        activation=act,
        classes_=cls,
        source=str(path),
    )
