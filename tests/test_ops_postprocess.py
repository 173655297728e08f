"""ops.postprocess / ops.confidence against np.argmax + cv2.resize and numpy softmax."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtkseg import ops
from mtkseg.errors import InvalidArgumentError, InvalidTypeError


def nearest_reference(logits, size):
    am = np.argmax(logits, axis=-1).astype(np.uint8)
    return cv2.resize(am, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def bilinear_scores(logits, size):
    """Per-class cv2 INTER_LINEAR upsampling of float scores: the independent reference."""
    f = logits.astype(np.float32)
    return np.stack([cv2.resize(np.ascontiguousarray(f[:, :, c]), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
                     for c in range(f.shape[2])], axis=-1)


def assert_bilinear_matches(mask, logits, size, margin=1e-3):
    scores = bilinear_scores(logits, size)
    ref = np.argmax(scores, axis=-1)
    top2 = np.sort(scores, axis=-1)[..., -2:] if scores.shape[-1] > 1 else None
    if top2 is None:
        assert np.all(mask == 0)
        return
    clear = (top2[..., 1] - top2[..., 0]) > margin  # pixels that are not near-ties
    np.testing.assert_array_equal(mask[clear], ref[clear])
    assert (mask == ref).mean() >= 0.999


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8, np.uint8])
def test_nearest_matches_argmax_plus_inter_nearest(rng, dtype):
    if dtype in (np.int8, np.uint8):
        info = np.iinfo(dtype)
        logits = rng.integers(info.min, info.max + 1, (192, 320, 6)).astype(dtype)
    else:
        logits = rng.normal(size=(192, 320, 6)).astype(dtype)
    mask = ops.postprocess(logits[None], (720, 1280))
    np.testing.assert_array_equal(mask, nearest_reference(logits, (720, 1280)))


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8, np.uint8])
def test_bilinear_matches_per_class_resize_then_argmax(rng, dtype):
    # Smooth fields so class regions are blobs, like real logits.
    base = rng.normal(size=(24, 40, 6)).astype(np.float32)
    logits = bilinear_scores(base, (96, 160)) * 40
    if dtype in (np.int8, np.uint8):
        info = np.iinfo(dtype)
        logits = np.clip(np.round(logits) + (0 if dtype == np.int8 else 128), info.min, info.max)
    logits = logits.astype(dtype)
    mask = ops.postprocess(logits, (360, 480), mode="bilinear")
    assert_bilinear_matches(mask, logits, (360, 480))


@settings(max_examples=50, deadline=None)
@given(h=st.integers(1, 30), w=st.integers(1, 30), c=st.integers(1, 12), H=st.integers(1, 70), W=st.integers(1, 70),
       seed=st.integers(0, 2**31 - 1))
def test_any_sizes_and_class_counts(h, w, c, H, W, seed):
    logits = np.random.default_rng(seed).normal(size=(h, w, c)).astype(np.float32)
    np.testing.assert_array_equal(ops.postprocess(logits, (H, W), kind="logits"), nearest_reference(logits, (H, W)))
    assert_bilinear_matches(ops.postprocess(logits, (H, W), kind="logits", mode="bilinear"), logits, (H, W))


def test_single_class_gives_all_zero(rng):
    logits = rng.normal(size=(1, 8, 8, 1)).astype(np.float32)
    assert not ops.postprocess(logits, (20, 20), kind="logits").any()
    assert not ops.postprocess(logits, (20, 20), kind="logits", mode="bilinear").any()


def test_255_classes(rng):
    logits = rng.normal(size=(16, 16, 255)).astype(np.float32)
    np.testing.assert_array_equal(ops.postprocess(logits, (33, 47)), nearest_reference(logits, (33, 47)))
    assert ops.postprocess(logits).max() > 200


def test_ties_go_to_lowest_class():
    logits = np.zeros((4, 4, 5), np.float32)
    logits[..., 2] = logits[..., 4] = 1.0
    assert np.all(ops.postprocess(logits, (9, 9)) == 2)
    assert np.all(ops.postprocess(logits, (9, 9), mode="bilinear") == 2)
    flat = np.zeros((3, 3, 4), np.int8)
    assert np.all(ops.postprocess(flat, (5, 5)) == 0)


def test_nchw_logits_read_in_place(rng):
    nhwc = rng.normal(size=(1, 24, 32, 7)).astype(np.float32)
    nchw = np.ascontiguousarray(np.transpose(nhwc, (0, 3, 1, 2)))
    for mode in ("nearest", "bilinear"):
        np.testing.assert_array_equal(ops.postprocess(nchw, (50, 70), layout="nchw", mode=mode),
                                      ops.postprocess(nhwc, (50, 70), mode=mode))


def test_non_contiguous_logits(rng):
    big = rng.normal(size=(40, 60, 12)).astype(np.float32)
    view = big[::2, ::3, ::2]
    np.testing.assert_array_equal(ops.postprocess(view, (50, 50)), nearest_reference(np.ascontiguousarray(view), (50, 50)))


def test_letterbox_band_is_cut_before_resizing(rng):
    logits = rng.normal(size=(192, 320, 4)).astype(np.float32)
    geom = ops.InputGeometry(x0=0, y0=24, width=320, height=144, input_size=(192, 320), frame_size=(360, 800))
    inner = np.ascontiguousarray(logits[24:168])
    np.testing.assert_array_equal(ops.postprocess(logits, (360, 800), geometry=geom), nearest_reference(inner, (360, 800)))
    assert_bilinear_matches(ops.postprocess(logits, (360, 800), geometry=geom, mode="bilinear"), inner, (360, 800))


def test_geometry_scales_to_smaller_output(rng):
    logits = rng.normal(size=(24, 40, 3)).astype(np.float32)  # stride-8 head of a 192x320 input
    geom = ops.InputGeometry(x0=0, y0=32, width=320, height=128, input_size=(192, 320), frame_size=(100, 250))
    inner = np.ascontiguousarray(logits[4:20])
    np.testing.assert_array_equal(ops.postprocess(logits, (100, 250), geometry=geom), nearest_reference(inner, (100, 250)))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8])
def test_class_index_outputs(rng, dtype):
    labels = rng.integers(0, 20, (1, 48, 64)).astype(dtype)
    ref = cv2.resize(labels[0].astype(np.uint8), (200, 150), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(ops.postprocess(labels, (150, 200), kind="labels"), ref)
    np.testing.assert_array_equal(ops.postprocess(labels[..., None], (150, 200), kind="labels"), ref)


def test_auto_kind_detection(rng):
    labels = rng.integers(0, 5, (1, 8, 8)).astype(np.int64)
    np.testing.assert_array_equal(ops.postprocess(labels), labels[0].astype(np.uint8))
    score = np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 8, 8, 1)
    np.testing.assert_array_equal(ops.postprocess(score), (score[0, :, :, 0] > 0.5).astype(np.uint8))


def test_class_index_out_of_uint8_range_raises():
    labels = np.full((4, 4), 300, np.int32)
    with pytest.raises(InvalidArgumentError, match="300"):
        ops.postprocess(labels, kind="labels")
    with pytest.raises(InvalidArgumentError, match="-1"):
        ops.postprocess(np.full((4, 4), -1, np.int64), kind="labels")


def test_single_channel_threshold(rng):
    prob = rng.random((1, 20, 30, 1)).astype(np.float32)
    ref = cv2.resize((prob[0, :, :, 0] > 0.3).astype(np.uint8), (90, 60), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(ops.postprocess(prob, (60, 90), kind="score", threshold=0.3), ref)
    up = cv2.resize(prob[0, :, :, 0], (90, 60), interpolation=cv2.INTER_LINEAR)
    got = ops.postprocess(prob, (60, 90), kind="score", threshold=0.3, mode="bilinear")
    clear = np.abs(up - 0.3) > 1e-4
    np.testing.assert_array_equal(got[clear], (up > 0.3)[clear])


def test_quantised_threshold_uses_dequantised_units():
    raw = np.arange(256, dtype=np.uint8).reshape(16, 16)
    scale, zp = 1 / 256, 0
    got = ops.postprocess(raw, kind="score", threshold=0.5, scale=scale, zero_point=zp)
    np.testing.assert_array_equal(got, (raw.astype(np.float64) * scale > 0.5).astype(np.uint8))


@pytest.mark.parametrize("dtype,scale,zp", [(np.float32, 1.0, 0), (np.int8, 0.1, -3), (np.uint8, 0.05, 128)])
def test_confidence_is_softmax_probability(rng, dtype, scale, zp):
    if dtype == np.float32:
        logits = rng.normal(size=(10, 12, 5)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        logits = rng.integers(info.min, info.max + 1, (10, 12, 5)).astype(dtype)
    z = (logits.astype(np.float64) - zp) * scale
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(ops.confidence(logits, None, 2, scale=scale, zero_point=zp, mode="nearest"), p[..., 2], atol=1e-5)
    np.testing.assert_allclose(ops.confidence(logits, None, scale=scale, zero_point=zp), p.max(-1), atol=1e-5)
    up = ops.confidence(logits, (30, 36), 1, scale=scale, zero_point=zp, mode="bilinear")
    ref = cv2.resize(p[..., 1].astype(np.float32), (36, 30), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(up, ref, atol=1e-4)


# ---- argument validation -------------------------------------------------------------

def test_rejects_bad_logits_dtype():
    with pytest.raises(InvalidTypeError, match="logits"):
        ops.postprocess(np.zeros((4, 4, 3), np.float64), kind="logits")


@pytest.mark.parametrize("shape", [(2, 4, 4, 3), (4,), (1, 2, 3, 4, 5)])
def test_rejects_bad_logits_shapes(shape):
    with pytest.raises(InvalidArgumentError):
        ops.postprocess(np.zeros(shape, np.float32), kind="logits")


def test_rejects_too_many_classes_and_empty():
    with pytest.raises(InvalidArgumentError, match="255"):
        ops.postprocess(np.zeros((2, 2, 256), np.float32))
    with pytest.raises(InvalidArgumentError, match="empty"):
        ops.postprocess(np.zeros((0, 4, 3), np.float32), kind="logits")


@pytest.mark.parametrize("size", [(0, 10), (-5, 10), (10,), (1.5, 3)])
def test_rejects_bad_sizes(size):
    with pytest.raises(InvalidArgumentError, match="size"):
        ops.postprocess(np.zeros((4, 4, 3), np.float32), size)


def test_rejects_bad_out_and_crop():
    logits = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(InvalidArgumentError, match="out"):
        ops.postprocess(logits, (8, 8), out=np.zeros((8, 9), np.uint8))
    with pytest.raises(InvalidTypeError, match="out"):
        ops.postprocess(logits, (8, 8), out=np.zeros((8, 8), np.int32))
    ro = np.zeros((8, 8), np.uint8)
    ro.flags.writeable = False
    with pytest.raises(InvalidArgumentError, match="read-only"):
        ops.postprocess(logits, (8, 8), out=ro)
    with pytest.raises(InvalidArgumentError, match="crop"):
        ops.postprocess(logits, (8, 8), geometry=(2, 2, 5, 5))
    with pytest.raises(InvalidArgumentError, match="mode"):
        ops.postprocess(logits, (8, 8), mode="cubic")
    with pytest.raises(InvalidArgumentError, match="class_index"):
        ops.confidence(logits, None, 3)
    with pytest.raises(InvalidArgumentError, match="scale"):
        ops.confidence(logits, None, scale=float("nan"))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_nan_logits_follow_numpy_argmax(rng, dtype):
    """A NaN score wins its pixel, the first NaN among several (np.argmax's rule)."""
    logits = rng.normal(0, 3, (9, 8, 6)).astype(dtype)
    where = rng.random(logits.shape) < 0.15
    logits[where] = np.nan
    logits[0, 0] = np.nan
    logits[0, 1, 3:] = np.nan
    logits[0, 2, 5] = np.nan
    expected = np.argmax(logits, axis=-1).astype(np.uint8)
    assert np.array_equal(ops.postprocess(logits), expected)
    strided = np.transpose(np.ascontiguousarray(np.transpose(logits, (2, 0, 1))), (1, 2, 0))  # class stride != 1
    assert np.array_equal(ops.postprocess(strided), expected)
    assert np.array_equal(ops.postprocess(logits, (18, 16)), cv2.resize(expected, (16, 18), interpolation=cv2.INTER_NEAREST))
    # bilinear: the same rule on the interpolated scores; a NaN pixel takes its first NaN class
    one = np.zeros((2, 2, 3), dtype)
    one[..., 0] = 1.0
    one[:, :, 2] = np.nan
    assert np.all(ops.postprocess(one, (4, 4), mode="bilinear") == 2)


@pytest.mark.parametrize("size", [(2**31, 1), (1, 2**31), (70000, 10), (65536, 65536), (True, 4), (4, False)])
def test_rejects_sizes_beyond_int32_and_memory(size):
    """(2**31, 1) used to return an unwritten 2 GiB mask; bools passed as 1 and 0."""
    error = InvalidTypeError if any(isinstance(v, bool) for v in size) else InvalidArgumentError
    with pytest.raises(error, match="size"):
        ops.postprocess(np.zeros((4, 4, 3), np.float32), size)
    with pytest.raises(error, match="size"):
        ops.confidence(np.zeros((4, 4, 3), np.float32), size)
    with pytest.raises(error, match="size"):
        ops.postprocess(np.zeros((4, 4), np.int32), size, kind="labels")
