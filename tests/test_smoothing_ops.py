"""Temporal smoothing kernels against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from mtkseg import ops
from mtkseg.errors import InvalidArgumentError, InvalidTypeError


@pytest.mark.parametrize("dtype,scale,zp", [(np.float32, 1.0, 0), (np.float16, 1.0, 0), (np.int8, 0.1, -5), (np.uint8, 0.2, 128)])
def test_ema_matches_numpy(rng, dtype, scale, zp):
    frames = [rng.normal(size=(6, 8, 3)) * 50 for _ in range(4)]
    if dtype in (np.int8, np.uint8):
        info = np.iinfo(dtype)
        frames = [np.clip(np.round(f), info.min, info.max).astype(dtype) for f in frames]
    else:
        frames = [f.astype(dtype) for f in frames]
    state, ref = None, None
    for f in frames:
        z = (f.astype(np.float64) - zp) * scale
        ref = z if ref is None else 0.7 * ref + 0.3 * z
        state = ops.ema_update(state, f, 0.7, scale=scale, zero_point=zp)
    np.testing.assert_allclose(state, ref, rtol=1e-4, atol=1e-3)


def test_mode3_majority_and_newest_wins():
    a = np.array([1, 1, 2, 3], np.uint8)
    b = np.array([1, 2, 2, 4], np.uint8)
    c = np.array([2, 1, 5, 5], np.uint8)
    np.testing.assert_array_equal(ops.mode3(a, b, c), [1, 1, 2, 5])


def test_smoothing_argument_errors():
    x = np.zeros((2, 2, 3), np.float32)
    with pytest.raises(InvalidArgumentError, match="momentum"):
        ops.ema_update(None, x, 1.0)
    with pytest.raises(InvalidArgumentError, match="shape"):
        ops.ema_update(np.zeros((2, 2, 4), np.float32), x, 0.5)
    with pytest.raises(InvalidTypeError, match="state"):
        ops.ema_update(np.zeros((2, 2, 3), np.float64), x, 0.5)
    with pytest.raises(InvalidArgumentError, match="shape"):
        ops.mode3(np.zeros(3, np.uint8), np.zeros(3, np.uint8), np.zeros(4, np.uint8))
    with pytest.raises(InvalidTypeError):
        ops.mode3(np.zeros(3, np.int16), np.zeros(3, np.uint8), np.zeros(3, np.uint8))


def test_thread_count_setting():
    before = ops.get_num_threads()
    try:
        ops.set_num_threads(1)
        assert ops.get_num_threads() == 1
        with pytest.raises(InvalidArgumentError):
            ops.set_num_threads(-1)
        with pytest.raises(InvalidTypeError):
            ops.set_num_threads("2")
    finally:
        ops.set_num_threads(0)
    assert ops.get_num_threads() == before
