"""Loading the attacker's data: plain numbers in, clear errors out, nothing unpickled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bastion.attacks.dataset import load_data
from bastion.errors import ConfigError


def test_npz_split_and_bounds(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((50, 4))
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=np.arange(50) % 3)
    data = load_data(path, bounds=(0.0, 1.0), points=10)
    assert data.x.shape == (10, 4) and data.y is not None and data.y.shape == (10,)
    assert data.x_eval is not None and data.x_eval.shape[0] == 10  # a held-out fifth
    assert data.pool is not None and data.pool.shape[0] == 40
    assert not np.isin(data.x_eval, data.pool).all(axis=1).any()


def test_rows_outside_the_bounds_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([[0.5, 2.0]]))
    with pytest.raises(ConfigError, match="outside the bounds"):
        load_data(path, bounds=(0.0, 1.0))


def test_unknown_arrays_and_formats(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((2, 2)), weights=np.zeros(3))
    with pytest.raises(ConfigError, match="unknown arrays"):
        load_data(path)
    other = tmp_path / "d.parquet"
    other.write_bytes(b"PAR1")
    with pytest.raises(ConfigError, match="unsupported data format"):
        load_data(other)


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n0.1,0.2,1\n0.3,oops,0\n")
    with pytest.raises(ConfigError) as err:
        load_data(path)
    assert err.value.line == 3 and "non-numeric" in str(err.value)
