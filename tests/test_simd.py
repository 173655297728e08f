"""SIMD kernels (csrc/simd.cpp) bit-exact with the scalar path and numpy at every dispatch level.

Each test runs once per level this CPU supports (scalar, sse4.1, avx2 on x86-64; scalar, neon
on aarch64), forced through the test-only ``_core._set_simd_level``."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtkseg import _core, ops
from mtkseg.errors import InvalidArgumentError

LEVELS = _core.simd_levels()


@pytest.fixture(params=LEVELS)
def level(request):
    previous = _core._set_simd_level(request.param)
    yield request.param
    _core._set_simd_level(previous)


def at_level(name, fn):
    previous = _core._set_simd_level(name)
    try:
        return fn()
    finally:
        _core._set_simd_level(previous)


def logits_of(rng, shape, dtype, ties):
    """Scores with many ties (few distinct values) or spread ones; floats get +-0, +-inf."""
    if dtype == np.float32:
        if ties:
            pool = np.array([-np.inf, -1.0, -0.0, 0.0, 0.5, np.inf], np.float32)
            return pool[rng.integers(0, len(pool), shape)]
        return rng.normal(size=shape).astype(np.float32)
    info = np.iinfo(dtype)
    if ties:
        pool = np.array([info.min, info.min + 1, 0, info.max - 1, info.max]).astype(dtype)
        return pool[rng.integers(0, len(pool), shape)]
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def check_all_levels(logits, expected=None):
    expected = np.argmax(logits, axis=-1).astype(np.uint8) if expected is None else expected
    for name in LEVELS:
        got = at_level(name, lambda: ops.postprocess(logits, kind="logits"))
        np.testing.assert_array_equal(got, expected, err_msg=f"level {name}")


def test_levels_include_scalar_and_this_cpu_best():
    assert LEVELS[0] == "scalar"
    assert _core.simd_level() in LEVELS
    if os.uname().machine in ("x86_64", "AMD64") and "avx2" in open("/proc/cpuinfo").read():
        assert LEVELS == ["scalar", "sse4.1", "avx2"]


def test_unsupported_level_raises_and_keeps_the_current_one():
    before = _core.simd_level()
    with pytest.raises(InvalidArgumentError, match="not supported"):
        _core._set_simd_level("avx512" if "neon" not in LEVELS else "avx2")
    assert _core.simd_level() == before


@pytest.mark.parametrize("name", ["scalar", "sse4.1", "avx2", "neon", "bogus"])
def test_environment_variable_picks_the_level(name):
    env = dict(os.environ, MTKSEG_SIMD=name)
    out = subprocess.run([sys.executable, "-c", "from mtkseg import _core; print(_core.simd_level())"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    best = LEVELS[-1]
    assert out == (name if name in LEVELS else best)


@settings(max_examples=150, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 40), c=st.integers(1, 255),
       dtype=st.sampled_from([np.uint8, np.int8, np.float32]), ties=st.booleans(),
       layout=st.sampled_from(["packed", "pixel_stride", "cropped_channels", "unaligned", "nchw"]),
       seed=st.integers(0, 2**31 - 1))
def test_argmax_matches_numpy_at_every_level(h, w, c, dtype, ties, layout, seed):
    rng = np.random.default_rng(seed)
    if layout == "packed":
        logits = logits_of(rng, (h, w, c), dtype, ties)
    elif layout == "pixel_stride":  # every other pixel of a wider tensor
        logits = logits_of(rng, (h, 2 * w, c), dtype, ties)[:, ::2]
    elif layout == "cropped_channels":  # channels contiguous, pixel stride > C
        logits = logits_of(rng, (h, w, c + 3), dtype, ties)[:, :, 1:c + 1]
    elif layout == "unaligned":  # element data at an odd address
        data = logits_of(rng, (h, w, c), dtype, ties)
        raw = np.zeros(data.nbytes + 1, np.uint8)
        logits = raw[1:].view(dtype).reshape(h, w, c)
        logits[...] = data
    else:  # class stride != 1: the scalar path at every level
        logits = np.transpose(np.ascontiguousarray(np.transpose(logits_of(rng, (h, w, c), dtype, ties), (2, 0, 1))),
                              (1, 2, 0))
    check_all_levels(logits)


@pytest.mark.parametrize("c", [1, 2, 4, 5, 8, 9, 15, 16, 17, 31, 32, 33, 64, 200, 255])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.float32])
def test_every_chunk_boundary_and_the_array_end(rng, c, dtype):
    # 1 row: every pixel near the array's end, where full-width loads must not run past it.
    for shape in ((1, 3, c), (5, 7, c)):
        check_all_levels(logits_of(rng, shape, dtype, ties=True))
        check_all_levels(logits_of(rng, shape, dtype, ties=False))


@pytest.mark.parametrize("c", [1, 3, 4, 6, 8, 9, 11, 17, 40])
def test_nan_rule_at_every_level(rng, c):
    """A NaN wins its pixel, the first NaN among several (np.argmax's rule)."""
    logits = rng.normal(0, 3, (6, 13, c)).astype(np.float32)
    logits[rng.random(logits.shape) < 0.1] = np.nan
    logits[0, 0, -1] = np.nan
    logits[0, 1] = np.nan
    logits[0, 2, :] = -np.inf
    logits[0, 2, c // 2] = np.nan
    check_all_levels(logits)


def test_ties_keep_the_first_class_at_every_level():
    for dtype in (np.uint8, np.int8, np.float32):
        logits = np.zeros((3, 40, 20), dtype)
        logits[..., 7] = logits[..., 19] = 5
        logits[1, :, 3] = 5
        expected = np.full((3, 40), 7, np.uint8)
        expected[1] = 3
        check_all_levels(logits, expected)
    signed_zero = np.zeros((2, 20, 6), np.float32)
    signed_zero[..., 0] = -0.0
    signed_zero[..., 3] = 0.0
    signed_zero[..., 1:3] = -1.0
    check_all_levels(signed_zero, np.zeros((2, 20), np.uint8))


@pytest.mark.parametrize("shape,size", [((72, 96, 11), (720, 1280)), ((192, 320, 6), (720, 1280)),
                                        ((288, 384, 11), (720, 1280)), ((10, 3, 4), (333, 97))])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.float32])
def test_resized_masks_match_argmax_plus_inter_nearest_at_every_level(rng, level, shape, size, dtype):
    logits = logits_of(rng, shape, dtype, ties=False)
    expected = cv2.resize(np.argmax(logits, -1).astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(ops.postprocess(logits[None], size), expected)


@settings(max_examples=80, deadline=None)
@given(c=st.integers(1, 20), n=st.integers(0, 5000), ignore=st.sampled_from([255, 0, 3, None]),
       seed=st.integers(0, 2**31 - 1))
def test_confusion_matches_bincount_at_every_level(c, n, ignore, seed):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, c, n).astype(np.uint8)
    pred = rng.integers(0, c, n).astype(np.uint8)
    if ignore is not None and n:
        gt[rng.random(n) < 0.2] = ignore
    keep = np.ones(n, bool) if ignore is None else gt != ignore
    g, p = gt[keep].astype(np.int64), pred[keep].astype(np.int64)
    expected = np.bincount(c * g + p, minlength=c * c).reshape(c, c)
    for name in LEVELS:
        got = at_level(name, lambda: ops.confusion_matrix(gt, pred, c, ignore_index=ignore))
        np.testing.assert_array_equal(got, expected, err_msg=f"level {name}")


@pytest.mark.parametrize("where", ["gt", "pred"])
def test_confusion_bad_label_reported_at_every_level(level, where):
    gt = np.zeros(70000, np.uint8)
    pred = np.zeros(70000, np.uint8)
    (gt if where == "gt" else pred)[54321] = 11
    (gt if where == "gt" else pred)[60000] = 200
    out = np.zeros((11, 11), np.int64)
    with pytest.raises(InvalidArgumentError, match=f"{where}: label 11 at flat index 54321"):
        ops.confusion_matrix(gt, pred, 11, out=out)
    assert not out.any()


def test_confusion_frame_sized_over_threads_at_every_level(rng, level):
    gt = rng.integers(0, 11, (720, 1280)).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.1] = 255
    pred = rng.integers(0, 11, (720, 1280)).astype(np.uint8)
    keep = gt != 255
    expected = np.bincount(11 * gt[keep].astype(np.int64) + pred[keep], minlength=121).reshape(11, 11)
    for threads in (1, 2, 3):
        ops.set_num_threads(threads)
        try:
            np.testing.assert_array_equal(ops.confusion_matrix(gt, pred, 11), expected)
        finally:
            ops.set_num_threads(0)
