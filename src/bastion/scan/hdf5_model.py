"""Legacy Keras `.h5`: the model config lives in an HDF5 attribute, read with h5py if present."""

from __future__ import annotations

from typing import IO

from bastion.scan.keras_config import check_keras_config
from bastion.scan.rules import Issue

__all__ = ["check_hdf5"]


def check_hdf5(stream: IO[bytes], member: str | None) -> list[Issue]:
    try:
        import h5py  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return [
            Issue(
                "S307",
                "HDF5 file: its Keras model_config is read with h5py (pip install "
                "'bastion-ml[h5]'); without it the file is not called clean",
                member,
                "hdf5",
            )
        ]
    stream.seek(0)
    try:
        with h5py.File(stream, "r") as f:
            config = f.attrs.get("model_config")
    except (OSError, ValueError) as exc:
        return [Issue("S301", f"HDF5 file cannot be read: {exc}", member, "hdf5")]
    if config is None:
        return []
    text = config.decode("utf-8", "replace") if isinstance(config, bytes) else str(config)
    return check_keras_config(text, member)
