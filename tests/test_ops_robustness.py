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


def _run_isolated(code: str, timeout: float = 120) -> "subprocess.CompletedProcess":
    """Run ``code`` in a fresh interpreter, so a native crash fails the test instead of pytest."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


def test_confusion_matrix_survives_concurrent_set_num_threads():
    """The kernel sized its per-thread buffers from one read of the thread count and split
    the work by another: a concurrent set_num_threads overflowed the heap."""
    code = """
import threading, time
import numpy as np
from mtkseg import ops
rng = np.random.default_rng(0)
gt = rng.integers(0, 19, (720, 1280), dtype=np.uint8)
pred = rng.integers(0, 19, (720, 1280), dtype=np.uint8)
expected = np.bincount(gt.astype(np.int64).ravel() * 19 + pred.ravel(), minlength=19 * 19).reshape(19, 19)
stop = threading.Event()
def hammer():
    n = 0
    while not stop.is_set():
        ops.set_num_threads(1 + n % 8)
        n += 1
t = threading.Thread(target=hammer)
t.start()
try:
    t_end = time.monotonic() + 4
    runs = 0
    while time.monotonic() < t_end:
        for g, p in ((gt, pred), (gt.astype(np.int32), pred.astype(np.int32))):
            cm = ops.confusion_matrix(g, p, 19)
            assert np.array_equal(cm, expected), "wrong counts"
        runs += 1
finally:
    stop.set()
    t.join()
    ops.set_num_threads(0)
print("ok", runs)
"""
    proc = _run_isolated(code)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.startswith("ok")


def test_frame_wider_than_int32_is_rejected_not_a_crash():
    code = """
import numpy as np
from numpy.lib.stride_tricks import as_strided
from mtkseg import ops
from mtkseg.errors import InvalidArgumentError
base = np.zeros(3, np.uint8)
frame = as_strided(base, shape=(2, 2**31, 3), strides=(0, 0, 1))  # no memory behind it
out = np.zeros((1, 8, 8, 3), np.float32)
try:
    ops.preprocess(frame, out)
except InvalidArgumentError as exc:
    assert "frame" in str(exc) and "2**31" in str(exc), str(exc)
    print("ok")
"""
    proc = _run_isolated(code)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.strip() == "ok"


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8])
def test_unaligned_views_read_correctly(rng, dtype):
    """numpy allows arrays whose data is not aligned to the item size; the kernels read them
    through memcpy (the typed loads they replaced were undefined behaviour)."""
    logits = rng.normal(0, 4, (6, 7, 5)).astype(dtype)
    raw = np.zeros(logits.nbytes + 1, np.uint8)
    unaligned = raw[1:].view(dtype).reshape(logits.shape)
    unaligned[...] = logits
    assert not unaligned.flags.aligned or np.dtype(dtype).itemsize == 1
    for mode in ("nearest", "bilinear"):
        assert np.array_equal(ops.postprocess(unaligned, (13, 11), mode=mode), ops.postprocess(logits, (13, 11), mode=mode))
    assert np.array_equal(ops.ema_update(None, unaligned, 0.5), ops.ema_update(None, logits, 0.5))
    labels = rng.integers(0, 9, (5, 6)).astype(np.int32)
    raw = np.zeros(labels.nbytes + 1, np.uint8)
    ul = raw[1:].view(np.int32).reshape(labels.shape)
    ul[...] = labels
    assert np.array_equal(ops.postprocess(ul, (10, 12), kind="labels"), ops.postprocess(labels, (10, 12), kind="labels"))


_NO_THREADS = """
import resource, sys
import numpy as np
from mtkseg import ops
ops.set_num_threads(4)
rng = np.random.default_rng(0)
gt = rng.integers(0, 12, (2000, 2000), dtype=np.uint8)
pred = rng.integers(0, 12, (2000, 2000), dtype=np.uint8)
expected = np.zeros((12, 12), np.int64)
np.add.at(expected, (gt.ravel().astype(np.int64), pred.ravel().astype(np.int64)), 1)
frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
out = np.empty((1, 540, 960, 3), np.float32)
ops.preprocess(frame, out)
pre_expected = out.copy()
out[:] = 0
# Address space for the running interpreter plus MARGIN MiB: a worker's 8 MiB stack fits
# MARGIN // 8 times, so pthread_create fails with EAGAIN for the others (works as root,
# where RLIMIT_NPROC is not enforced).
with open("/proc/self/statm") as f:
    vm = int(f.read().split()[0]) * resource.getpagesize()
limit = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (vm + (int(sys.argv[1]) << 20), limit[1]))
cm = ops.confusion_matrix(gt, pred, 12)
ops.preprocess(frame, out)
resource.setrlimit(resource.RLIMIT_AS, limit)  # compare with room to spare
print("confusion", np.array_equal(np.asarray(cm), expected), "preprocess", np.array_equal(out, pre_expected))
"""


@pytest.mark.parametrize("margin_mib", [4, 12])
def test_kernels_run_on_the_calling_thread_when_workers_cannot_start(margin_mib):
    """No worker (4 MiB) or one worker (12 MiB) can start: the kernels fall back to fewer
    threads instead of std::terminate (was: exit 134, or a bare RuntimeError)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _NO_THREADS, str(margin_mib)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-1500:]}"
    assert proc.stdout.split() == ["confusion", "True", "preprocess", "True"]


# ----------------------------------------------------------------------------- outcomes, not just "no crash"
# Bad values (NaN scores, out-of-range labels, odd strides) and sizes above the native kernels'
# parallel thresholds (csrc/common.hpp kMinParallelWork = 2**21 elements, csrc/confusion.cpp
# kMinParallelPixels = 2**18 pixels), with the outcome asserted against numpy: the exact result,
# or the typed error exactly when numpy says the input is invalid.

from mtkseg.errors import InvalidArgumentError  # noqa: E402

PARALLEL_WORK = 1 << 21
PARALLEL_PIXELS = 1 << 18


def _odd_view(draw, base: np.ndarray) -> np.ndarray:
    """``base`` itself, reversed along axis 0 or 1, or a step-2/3 view of a larger copy."""
    how = draw(st.sampled_from(["plain", "reversed0", "reversed1", "step"]))
    if how == "reversed0":
        big = np.ascontiguousarray(base[::-1])
        return big[::-1]
    if how == "reversed1":
        big = np.ascontiguousarray(base[:, ::-1])
        return big[:, ::-1]
    if how == "step":
        step = draw(st.sampled_from([2, 3]))
        big = np.zeros((base.shape[0] * step,) + base.shape[1:], base.dtype)
        big[::step] = base
        return big[::step]
    return base


def _equal_or_layout_error(call, view: np.ndarray, expected: np.ndarray) -> None:
    """Negative strides are refused with a typed error naming the layout (the kernels read
    forward only); any other view gives exactly ``expected``."""
    if any(s < 0 for s in view.strides):
        with pytest.raises(InvalidArgumentError, match="memory layout"):
            call()
    else:
        np.testing.assert_array_equal(call(), expected)


@settings(max_examples=12, deadline=None)
@given(data=st.data(), large=st.booleans(), num_classes=st.integers(1, 12), bad=st.sampled_from(["none", "high", "neg"]),
       ignore=st.sampled_from([255, None]))
def test_confusion_matrix_equals_numpy_or_raises_on_bad_labels(data, large, num_classes, bad, ignore):
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    h, w = (640, 512) if large else (data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40)))
    assert not large or h * w > PARALLEL_PIXELS  # the threaded path
    dtype = np.int32 if bad == "neg" else np.uint8
    gt = rng.integers(0, num_classes, (h, w)).astype(dtype)
    pred = rng.integers(0, num_classes, (h, w)).astype(np.uint8)
    if ignore is not None:
        gt[rng.random((h, w)) < 0.1] = 255
    if bad != "none":
        y, x = data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))
        gt[y, x] = num_classes if bad == "high" else -1
        if ignore is not None and bad == "high" and num_classes == 255:
            gt[y, x] = 254
    gt_v, pred_v = _odd_view(data.draw, gt), _odd_view(data.draw, pred)
    keep = gt != ignore if ignore is not None else np.ones(gt.shape, bool)
    labels = gt[keep].astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        with pytest.raises(InvalidArgumentError, match="gt"):
            ops.confusion_matrix(gt_v, pred_v, num_classes, ignore_index=ignore)
        return
    expected = np.bincount(labels * num_classes + pred[keep], minlength=num_classes ** 2).reshape(num_classes, -1)
    np.testing.assert_array_equal(ops.confusion_matrix(gt_v, pred_v, num_classes, ignore_index=ignore), expected)


@settings(max_examples=10, deadline=None)
@given(data=st.data(), large=st.booleans(), channels=st.integers(2, 9), nan_share=st.sampled_from([0.0, 0.001, 0.3]),
       dtype=st.sampled_from([np.float32, np.float16]))
def test_argmax_with_nan_scores_equals_numpy(data, large, channels, nan_share, dtype):
    """ops.postprocess at the tensor's own size is np.argmax, NaN rule included (a NaN wins its
    pixel, the first NaN class where there are several), on the threaded path too."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    h, w = (1100, 1000) if large else (data.draw(st.integers(1, 30)), data.draw(st.integers(1, 30)))
    assert not large or h * w * channels > PARALLEL_WORK
    scores = rng.normal(0, 1, (h, w, channels)).astype(dtype)
    scores[rng.random(scores.shape) < nan_share] = np.nan
    scores[rng.random((h, w)) < 0.05, :] = 0  # ties go to the lowest index
    view = _odd_view(data.draw, scores)
    _equal_or_layout_error(lambda: ops.postprocess(view[None], kind="logits"), view,
                           np.argmax(scores, axis=-1).astype(np.uint8))


@settings(max_examples=8, deadline=None)
@given(data=st.data(), large=st.booleans())
def test_nearest_resize_of_labels_equals_opencv(data, large):
    """Class-index outputs resized nearest (threaded above PARALLEL_WORK output pixels) equal
    cv2.INTER_NEAREST of the same labels, from any strides."""
    import cv2

    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    h, w = data.draw(st.integers(2, 60)), data.draw(st.integers(2, 60))
    size = (1600, 1400) if large else (data.draw(st.integers(1, 90)), data.draw(st.integers(1, 90)))
    assert not large or size[0] * size[1] > PARALLEL_WORK
    labels = rng.integers(0, 20, (h, w)).astype(np.uint8)
    view = _odd_view(data.draw, labels)
    _equal_or_layout_error(lambda: ops.postprocess(view, size, kind="labels"), view,
                           cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST))
