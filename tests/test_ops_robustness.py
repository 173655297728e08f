"""The native kernels never crash: random dtypes, shapes and memory layouts either work or
raise a typed mtkseg error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtkseg import ops
from mtkseg.errors import MtksegError

DTYPES = [np.uint8, np.int8, np.uint16, np.int32, np.int64, np.float16, np.float32, np.float64, ">f4", ">i4", np.bool_]


@st.composite
def arrays(draw, max_dims=4):
    ndim = draw(st.integers(0, max_dims))
    shape = tuple(draw(st.integers(0, 7)) for _ in range(ndim))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    arr = np.zeros(shape, dtype)
    if ndim and arr.size and draw(st.booleans()):  # a strided or reversed view
        step = draw(st.sampled_from([-1, 2]))
        axis = draw(st.integers(0, ndim - 1))
        index = [slice(None)] * ndim
        index[axis] = slice(None, None, step)
        arr = arr[tuple(index)]
    if draw(st.booleans()):
        arr.flags.writeable = False
    return arr


def call_or_typed_error(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except MtksegError:
        pass


@settings(max_examples=300, deadline=None)
@given(frame=arrays(), out=arrays(), fit=st.sampled_from(["stretch", "letterbox"]),
       interp=st.sampled_from(["auto", "linear", "area"]), layout=st.sampled_from(["nhwc", "nchw"]))
def test_preprocess_never_crashes(frame, out, fit, interp, layout):
    call_or_typed_error(ops.preprocess, frame, out, fit=fit, interpolation=interp, layout=layout, scale=0.1, zero_point=0)


@settings(max_examples=300, deadline=None)
@given(output=arrays(), size=st.tuples(st.integers(-1, 9), st.integers(-1, 9)),
       kind=st.sampled_from(["auto", "logits", "labels", "score"]), mode=st.sampled_from(["nearest", "bilinear"]),
       crop=st.one_of(st.none(), st.tuples(*[st.integers(-2, 8)] * 4)))
def test_postprocess_and_confidence_never_crash(output, size, kind, mode, crop):
    call_or_typed_error(ops.postprocess, output, size, kind=kind, mode=mode, geometry=crop)
    call_or_typed_error(ops.confidence, output, size, 0, mode=mode, geometry=crop)


@settings(max_examples=200, deadline=None)
@given(gt=arrays(), pred=arrays(), c=st.integers(-1, 300), out=st.one_of(st.none(), arrays()))
def test_confusion_never_crashes(gt, pred, c, out):
    call_or_typed_error(ops.confusion_matrix, gt, pred, c, out=out)


@settings(max_examples=200, deadline=None)
@given(frame=arrays(), mask=arrays(), palette=arrays(), alpha=st.one_of(st.floats(-1, 2), st.just(float("nan"))))
def test_overlay_colorize_smoothing_never_crash(frame, mask, palette, alpha):
    call_or_typed_error(ops.overlay, frame, mask, palette, alpha)
    call_or_typed_error(ops.colorize, mask, palette)
    call_or_typed_error(ops.ema_update, None if alpha < 0.5 else frame, mask, 0.5)
    call_or_typed_error(ops.mode3, frame, mask, mask)


def test_byte_swapped_arrays_are_rejected_not_misread():
    with pytest.raises(MtksegError, match="dtype"):
        ops.postprocess(np.zeros((4, 4, 3), ">f4"), kind="logits")
    with pytest.raises(MtksegError, match="dtype"):
        ops.preprocess(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), ">f4"))
