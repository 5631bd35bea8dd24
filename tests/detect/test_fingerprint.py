"""Fingerprints: the fast window keys and top-k selection equal their plain definitions."""

from __future__ import annotations

import numpy as np
import pytest

from bastion.detect.fingerprint import (
    FingerprintDetector,
    FingerprintOptions,
    _largest_distinct,
    _windows,
)


def _plain_windows(q: np.ndarray, w: int) -> np.ndarray:
    n = q.size - w + 1
    key = np.zeros(n, dtype=np.uint64)
    for j in range(w):
        key |= q[j : j + n] << np.uint64(3 * j)
    return key


@pytest.mark.parametrize("w", [2, 3, 5, 7, 12, 16, 19, 20])
def test_window_keys_pack_every_run_of_w_values(w: int) -> None:
    q = np.random.default_rng(w).integers(0, 8, size=257).astype(np.uint64)
    np.testing.assert_array_equal(_windows(q, w), _plain_windows(q, w))


@pytest.mark.parametrize(("size", "values"), [(5, 2**60), (150, 2**60), (3000, 2**60), (3000, 60)])
def test_largest_distinct_values_match_a_full_sort(size: int, values: int) -> None:
    v = np.random.default_rng(size).integers(0, values, size=size).astype(np.uint64)
    for k in (4, 50):
        np.testing.assert_array_equal(_largest_distinct(v, k), np.unique(v)[-k:])


def test_an_image_and_a_few_changed_pixels_share_most_keys_unlike_another_image() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits().images / 16.0
    det = FingerprintDetector(FingerprintOptions(salt="test"))
    a, b = digits[0], digits[1]
    edited = a.copy()
    edited[3, 3] = 1.0 - edited[3, 3]
    keys_a, digest_a = det.fingerprint(a)
    keys_e, digest_e = det.fingerprint(edited)
    keys_b, _ = det.fingerprint(b)
    assert digest_a != digest_e
    shared_edit = np.intersect1d(keys_a, keys_e).size
    shared_other = np.intersect1d(keys_a, keys_b).size
    assert shared_edit >= det.opts.match > shared_other
