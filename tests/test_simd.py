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
        flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split())
        avx512 = {"avx512f", "avx512bw", "avx512vl", "avx512vbmi", "avx512_vnni"} <= flags
        assert LEVELS == ["scalar", "sse4.1", "avx2"] + (["avx512"] if avx512 else [])


def test_unsupported_level_raises_and_keeps_the_current_one():
    before = _core.simd_level()
    with pytest.raises(InvalidArgumentError, match="not supported"):
        _core._set_simd_level("neon" if "neon" not in LEVELS else "avx2")
    assert _core.simd_level() == before


@pytest.mark.parametrize("name", ["scalar", "sse4.1", "avx2", "avx512", "neon", "bogus"])
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


@pytest.mark.parametrize("c", [2, 3, 6, 11, 12, 17])
def test_infinities_without_nan_at_every_level(rng, c):
    """+inf and -inf but no NaN: the vector blocks sum their scores to find NaNs, and
    inf + -inf is NaN there, so these blocks must still give np.argmax's answer (first +inf)."""
    logits = rng.normal(0, 3, (4, 24, c)).astype(np.float32)
    logits[0, :, 0] = np.inf
    logits[0, :, -1] = -np.inf
    logits[1, ::2, c // 2] = np.inf
    logits[1, ::3, -1] = np.inf  # two +inf in one pixel: the first wins
    logits[2] = -np.inf  # all -inf: class 0
    logits[3, :, : c // 2] = np.finfo(np.float32).max  # sums overflow to +inf, never NaN
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


# ---- preprocess's fixed-point bilinear path (csrc/linear_u8.cpp) ---------------------------

UNIT_INT = {np.uint8: dict(scale=1 / 255, zero_point=0), np.int8: dict(scale=1 / 255, zero_point=-128)}


def frame_view(base, h, w, layout):
    """An h x w 3-channel view of base (h + 2, 2 * w + 4, 3): the SIMD loops take packed pixels
    with any row stride; pixel stride 6 or a reversed channel axis take the scalar loops at
    every level."""
    return {"packed": base[:h, :w], "cropped": base[1:h + 1, 3:w + 3], "flipped_rows": base[h - 1::-1, :w],
            "reversed_channels": base[:h, :w, ::-1], "pixel_stride": base[:h, :2 * w:2]}[layout]


def preprocess_at_levels(frame, out_shape, dtype, **kwargs):
    """{level: output} with an output tensor whose rows are strided (a view of a wider one)."""
    h, w, c = out_shape
    results = {}
    for name in LEVELS:
        wide = np.full((h, w + 3, c), 7, dtype)
        out = wide[None, :, :w]
        at_level(name, lambda: ops.preprocess(frame, out, interpolation="linear", **UNIT_INT[dtype], **kwargs))
        assert (wide[:, w:] == 7).all(), f"level {name} wrote past the row"
        results[name] = out.copy()
    return results


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_fixed_point_strided_frame_at_every_level(rng, dtype):
    """A 720p BGRA frame's BGR view (pixel stride 4): the AVX-512 level's windows take any
    pixel stride; the lower levels' 8-byte windows need packed pixels (scalar loops here)."""
    bgra = rng.integers(0, 256, (720, 1280, 4), dtype=np.uint8)
    got = preprocess_at_levels(bgra[:, :, :3], (288, 384, 3), dtype)
    expected = preprocess_at_levels(np.ascontiguousarray(bgra[:, :, :3]), (288, 384, 3), dtype)["scalar"]
    for name in LEVELS:
        np.testing.assert_array_equal(got[name], expected, err_msg=f"level {name}")


@settings(max_examples=150, deadline=None)
@given(sh=st.integers(1, 70), sw=st.integers(1, 70), dh=st.integers(1, 70), dw=st.integers(1, 70),
       dtype=st.sampled_from([np.uint8, np.int8]), color=st.sampled_from(["bgr", "rgb"]),
       model_color=st.sampled_from(["rgb", "bgr"]), fit=st.sampled_from(["stretch", "letterbox"]),
       layout=st.sampled_from(["packed", "cropped", "flipped_rows", "reversed_channels", "pixel_stride"]),
       seed=st.integers(0, 2**31 - 1))
def test_fixed_point_preprocess_is_bit_exact_at_every_level(sh, sw, dh, dw, dtype, color, model_color, fit, layout,
                                                            seed):
    base = np.random.default_rng(seed).integers(0, 256, (sh + 2, 2 * sw + 4, 3), dtype=np.uint8)
    frame = frame_view(base, sh, sw, layout)
    assert frame.shape == (sh, sw, 3)
    got = preprocess_at_levels(frame, (dh, dw, 3), dtype, color=color, model_color=model_color, fit=fit)
    for name in LEVELS[1:]:
        np.testing.assert_array_equal(got[name], got["scalar"], err_msg=f"level {name}")
    # A view resizes like its contiguous copy (reversed channels: like the copy in the other order).
    if layout == "reversed_channels":
        copy, copy_color = np.ascontiguousarray(frame[:, :, ::-1]), {"bgr": "rgb", "rgb": "bgr"}[color]
    else:
        copy, copy_color = np.ascontiguousarray(frame), color
    again = np.empty((1, dh, dw, 3), dtype)
    ops.preprocess(copy, again, color=copy_color, model_color=model_color, fit=fit, interpolation="linear",
                   **UNIT_INT[dtype])
    np.testing.assert_array_equal(again, got["scalar"])


# The AVX-512 level gathers each 16 values' taps from one window: 64 bytes for 1280 -> 384
# columns (vpermb), 128 for 1920 -> 384 (vpermt2b), and 4000 -> 300 needs more (the AVX2 loop at
# that level).  Rows: 720 -> 288 and 720 -> 480 take its fused row loop, 720 -> 600 the row cache;
# 320 -> 640 columns put the most columns past the vector loops of the lower levels.
@pytest.mark.parametrize("src,dst", [((720, 1280), (288, 384)), ((720, 1280), (192, 320)), ((720, 1280), (1000, 900)),
                                     ((1080, 1920), (288, 384)), ((720, 4000), (288, 300)), ((720, 1280), (480, 384)),
                                     ((720, 1280), (600, 384)), ((720, 320), (288, 640)),
                                     ((37, 1001), (5, 2003)), ((1, 9), (3, 17)), ((9, 1), (17, 3)), ((2, 2), (1, 1))])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_fixed_point_frame_sizes_and_threads_at_every_level(rng, src, dst, dtype):
    frame = rng.integers(0, 256, src + (3,), dtype=np.uint8)
    reference = preprocess_at_levels(frame, dst + (3,), dtype)["scalar"]
    # 1000x900 output rows are split over the threads (chunks restart the row cache).
    for threads in (2, 3):
        ops.set_num_threads(threads)
        try:
            for name, got in preprocess_at_levels(frame, dst + (3,), dtype).items():
                np.testing.assert_array_equal(got, reference, err_msg=f"level {name}, {threads} threads")
        finally:
            ops.set_num_threads(0)
