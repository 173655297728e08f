"""Confusion matrix and scores against scikit-learn and numpy bincount."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import jaccard_score

from mtkseg import ops
from mtkseg.errors import InvalidArgumentError, InvalidTypeError
from mtkseg.metrics import ConfusionMatrix, mean_iou, metrics_from_matrix, per_class_iou


def bincount_reference(gt, pred, c, ignore=255):
    keep = gt != ignore
    return np.bincount(c * gt[keep].astype(np.int64) + pred[keep], minlength=c * c).reshape(c, c)


@pytest.mark.parametrize("gt_dtype", [np.uint8, np.uint16, np.int32])
@pytest.mark.parametrize("pred_dtype", [np.uint8, np.uint16, np.int32])
def test_matches_sklearn_for_all_dtype_pairs(rng, gt_dtype, pred_dtype):
    gt = rng.integers(0, 11, (90, 120)).astype(gt_dtype)
    pred = rng.integers(0, 11, (90, 120)).astype(pred_dtype)
    gt[rng.random(gt.shape) < 0.1] = 255
    keep = gt != 255
    ref = sk_confusion(gt[keep], pred[keep], labels=range(11))
    np.testing.assert_array_equal(ops.confusion_matrix(gt, pred, 11), ref)


@settings(max_examples=60, deadline=None)
@given(c=st.integers(1, 40), n=st.integers(1, 500), seed=st.integers(0, 2**31 - 1), ignore_share=st.floats(0, 1))
def test_random_inputs_match_bincount(c, n, seed, ignore_share):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, c, n).astype(np.uint8)
    pred = rng.integers(0, c, n).astype(np.uint8)
    gt[rng.random(n) < ignore_share] = 255
    np.testing.assert_array_equal(ops.confusion_matrix(gt, pred, c), bincount_reference(gt, pred, c))


def test_large_uint16_class_count(rng):
    gt = rng.integers(0, 300, 5000).astype(np.uint16)
    pred = rng.integers(0, 300, 5000).astype(np.uint16)
    np.testing.assert_array_equal(ops.confusion_matrix(gt, pred, 300, ignore_index=None), bincount_reference(gt, pred, 300, -1))


def test_all_ignored_gives_zeros():
    gt = np.full((10, 10), 255, np.uint8)
    assert not ops.confusion_matrix(gt, np.zeros_like(gt), 3).any()
    assert np.isnan(mean_iou(np.zeros((3, 3), np.int64)))


def test_accumulates_into_given_matrix(rng):
    gt, pred = rng.integers(0, 4, (2, 50, 50)).astype(np.uint8)
    out = np.zeros((4, 4), np.int64)
    ops.confusion_matrix(gt, pred, 4, out=out)
    ops.confusion_matrix(gt, pred, 4, out=out)
    np.testing.assert_array_equal(out, 2 * bincount_reference(gt, pred, 4))


def test_non_contiguous_inputs(rng):
    gt = rng.integers(0, 5, (40, 60)).astype(np.uint8)
    pred = rng.integers(0, 5, (40, 60)).astype(np.uint8)
    np.testing.assert_array_equal(ops.confusion_matrix(gt[::2, ::3], pred[::2, ::3], 5),
                                  bincount_reference(gt[::2, ::3], pred[::2, ::3], 5))


def test_out_of_range_labels_raise_and_leave_out_untouched():
    gt = np.array([[0, 1], [2, 7]], np.uint8)
    pred = np.array([[0, 1], [2, 1]], np.uint8)
    out = np.ones((3, 3), np.int64)
    with pytest.raises(InvalidArgumentError, match="gt: label 7"):
        ops.confusion_matrix(gt, pred, 3, out=out)
    assert np.all(out == 1)
    with pytest.raises(InvalidArgumentError, match="pred: label 9"):
        ops.confusion_matrix(np.zeros(4, np.int32), np.array([0, 9, 0, 0], np.int32), 3)
    with pytest.raises(InvalidArgumentError, match="pred"):  # a void prediction is not a class
        ops.confusion_matrix(np.zeros(4, np.uint8), np.full(4, 255, np.uint8), 3)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32])
def test_frame_sized_inputs_split_over_threads(rng, dtype):
    """720p masks are counted by several threads: same matrix, and a bad label reports the
    first offending pixel whichever thread meets it."""
    gt = rng.integers(0, 11, (720, 1280)).astype(dtype)
    pred = rng.integers(0, 11, (720, 1280)).astype(dtype)
    gt[rng.random(gt.shape) < 0.1] = 255
    np.testing.assert_array_equal(ops.confusion_matrix(gt, pred, 11), bincount_reference(gt, pred, 11))
    pred[700, 5] = 12  # in the last chunk
    pred[100, 7] = 13  # earlier, in the first chunk
    gt[100, 7] = 1
    with pytest.raises(InvalidArgumentError, match=f"pred: label 13 at flat index {100 * 1280 + 7} "):
        ops.confusion_matrix(gt, pred, 11)


@pytest.mark.parametrize("bad", [
    dict(gt=np.zeros((3, 3), np.float32)), dict(pred=np.zeros((3, 3), np.int64)),
])
def test_rejects_bad_dtypes(bad):
    args = dict(gt=np.zeros((3, 3), np.uint8), pred=np.zeros((3, 3), np.uint8))
    args.update(bad)
    with pytest.raises(InvalidTypeError):
        ops.confusion_matrix(args["gt"], args["pred"], 3)


def test_rejects_shape_mismatch_bad_classes_and_bad_out():
    z = np.zeros((3, 3), np.uint8)
    with pytest.raises(InvalidArgumentError, match="shape"):
        ops.confusion_matrix(z, np.zeros((3, 4), np.uint8), 3)
    with pytest.raises(InvalidArgumentError, match="num_classes"):
        ops.confusion_matrix(z, z, 0)
    with pytest.raises(InvalidArgumentError, match="out"):
        ops.confusion_matrix(z, z, 3, out=np.zeros((4, 4), np.int64))
    with pytest.raises(InvalidTypeError, match="out"):
        ops.confusion_matrix(z, z, 3, out=np.zeros((3, 3), np.int32))
    ro = np.zeros((3, 3), np.int64)
    ro.flags.writeable = False
    with pytest.raises(InvalidArgumentError, match="read-only"):
        ops.confusion_matrix(z, z, 3, out=ro)


def test_scores_match_sklearn_and_hand_computed(rng):
    gt = rng.integers(0, 6, 4000)
    pred = np.where(rng.random(4000) < 0.7, gt, rng.integers(0, 6, 4000))
    m = ops.confusion_matrix(gt.astype(np.uint8), pred.astype(np.uint8), 6)
    res = metrics_from_matrix(m)
    np.testing.assert_allclose(res.iou, jaccard_score(gt, pred, average=None, labels=range(6)))
    assert res.miou == pytest.approx(jaccard_score(gt, pred, average="macro", labels=range(6)))
    assert res.pixel_accuracy == pytest.approx((gt == pred).mean())
    recall = [np.mean(pred[gt == k] == k) for k in range(6)]
    assert res.mean_class_accuracy == pytest.approx(np.mean(recall))
    freq = np.bincount(gt, minlength=6) / gt.size
    assert res.fwiou == pytest.approx(np.sum(freq * res.iou))


def test_absent_classes_are_nan_and_ignored_in_mean():
    m = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]], np.int64)
    iou = per_class_iou(m)
    assert np.isnan(iou[2])
    assert mean_iou(m) == pytest.approx((5 / 8 + 3 / 6) / 2)


def test_dataset_level_not_mean_of_images():
    # Two images: the dataset matrix must be the sum, giving a different mIoU than averaging.
    cm = ConfusionMatrix(2, class_names=["a", "b"])
    a_gt, a_pred = np.array([0, 0, 0, 1], np.uint8), np.array([0, 0, 0, 0], np.uint8)
    b_gt, b_pred = np.array([1, 1], np.uint8), np.array([1, 1], np.uint8)
    cm.update(a_gt, a_pred).update(b_gt, b_pred)
    np.testing.assert_array_equal(cm.matrix, [[3, 0], [1, 2]])
    assert cm.results().miou == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert set(cm.results().per_class()) == {"a", "b"}


def test_streaming_merge_reset_and_serialisation(rng):
    gt, pred = rng.integers(0, 3, (2, 1000)).astype(np.uint8)
    whole = ConfusionMatrix(3).update(gt, pred)
    left = ConfusionMatrix(3).update(gt[:400], pred[:400])
    right = ConfusionMatrix(3).update(gt[400:], pred[400:])
    np.testing.assert_array_equal(left.merge(right).matrix, whole.matrix)
    d = whole.results().to_dict()
    assert d["confusion_matrix"] == whole.matrix.tolist() and 0 <= d["miou"] <= 1
    assert "mIoU" in whole.results().format_table()
    whole.reset()
    assert not whole.matrix.any()
    with pytest.raises(InvalidArgumentError, match="merge"):
        left.merge(ConfusionMatrix(4))
    with pytest.raises(InvalidTypeError):
        left.merge("x")
    with pytest.raises(InvalidArgumentError, match="num_classes"):
        ConfusionMatrix(0)
    with pytest.raises(InvalidArgumentError, match="class_names"):
        ConfusionMatrix(2, class_names=["a"])
