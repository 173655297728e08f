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


# ----------------------------------------------------------------------------- edge cases, by hand

from mtkseg.metrics import frequency_weighted_iou, mean_class_accuracy, pixel_accuracy  # noqa: E402


def test_class_with_a_one_pixel_union_scores():
    # class 0: TP 1, union 1 -> 1.0; class 1: one gt pixel predicted as 2 -> IoU 0; class 2: 0/1 -> 0
    m = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]], np.int64)
    np.testing.assert_array_equal(per_class_iou(m), [1.0, 0.0, 0.0])
    assert mean_iou(m) == pytest.approx(1 / 3)
    assert pixel_accuracy(m) == 0.5
    assert mean_class_accuracy(m) == 0.5  # recall 1/1 and 0/1; class 2 has no gt pixel
    assert frequency_weighted_iou(m) == 0.5  # 1/2 * 1.0 + 1/2 * 0.0


def test_single_pixel_matrix():
    m = np.array([[1]], np.int64)
    res = metrics_from_matrix(m)
    assert res.iou.tolist() == [1.0] and res.miou == 1.0 and res.pixel_accuracy == 1.0
    assert res.mean_class_accuracy == 1.0 and res.fwiou == 1.0 and res.class_names == ["class_0"]
    wrong = np.array([[0, 1], [0, 0]], np.int64)  # one pixel of class 0 predicted as 1
    assert pixel_accuracy(wrong) == 0.0 and mean_class_accuracy(wrong) == 0.0 and frequency_weighted_iou(wrong) == 0.0


def test_empty_matrix_scores_are_nan_without_warnings():
    import warnings

    for c in (1, 3):
        m = np.zeros((c, c), np.int64)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = metrics_from_matrix(m)
            values = [mean_iou(m), pixel_accuracy(m), mean_class_accuracy(m), frequency_weighted_iou(m),
                      res.miou, res.pixel_accuracy, res.mean_class_accuracy, res.fwiou]
            iou = per_class_iou(m)
        assert all(isinstance(v, float) and np.isnan(v) for v in values)
        assert iou.shape == (c,) and np.all(np.isnan(iou))


def test_classes_absent_from_gt_do_not_count_in_class_accuracy():
    import warnings

    # gt has classes 0 and 2 only; class 1 is predicted once (a false positive of gt 0)
    m = np.array([[3, 1, 0], [0, 0, 0], [0, 0, 2]], np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mean_class_accuracy(m) == pytest.approx((3 / 4 + 2 / 2) / 2)
        # freq (4/6, 0, 2/6) x IoU (3/4, 0/1, 2/2)
        assert frequency_weighted_iou(m) == pytest.approx(4 / 6 * 3 / 4 + 2 / 6 * 1.0)
        np.testing.assert_allclose(per_class_iou(m), [3 / 4, 0.0, 1.0])


@pytest.mark.parametrize("shape", [(2, 3), (3, 2), (0, 0), (0, 3), (4,), (2, 2, 2)])
def test_scores_reject_non_square_matrices(shape):
    m = np.zeros(shape, np.int64)
    for f in (per_class_iou, mean_iou, pixel_accuracy, mean_class_accuracy, frequency_weighted_iou, metrics_from_matrix):
        with pytest.raises(InvalidArgumentError, match="matrix"):
            f(m)


def test_scores_reject_float_matrices():
    with pytest.raises(InvalidTypeError, match="matrix"):
        per_class_iou(np.eye(2))


def test_metrics_matrix_is_an_int64_copy_and_class_names_are_checked():
    m = np.array([[2, 1], [0, 3]], np.int64)
    res = metrics_from_matrix(m, ("x", "y"))
    m[0, 0] = 100  # mutating the input afterwards must not change the result
    assert res.matrix.dtype == np.int64 and res.matrix.tolist() == [[2, 1], [0, 3]]
    assert res.class_names == ["x", "y"]
    res32 = metrics_from_matrix(np.array([[2, 1], [0, 3]], np.int32))
    assert res32.matrix.dtype == np.int64 and res32.class_names == ["class_0", "class_1"]
    assert res32.to_dict()["confusion_matrix"] == [[2, 1], [0, 3]]
    assert all(type(v) is int for row in res32.to_dict()["confusion_matrix"] for v in row)
    with pytest.raises(InvalidArgumentError, match="class_names"):
        metrics_from_matrix(m, ["x"])


def test_to_dict_fields_and_nan_as_none():
    import json

    # class 0: IoU 2/3; class 1: 1/2; class 2 absent -> NaN -> None
    m = np.array([[2, 1, 0], [0, 1, 0], [0, 0, 0]], np.int64)
    d = metrics_from_matrix(m, ["a", "b", "c"]).to_dict()
    assert set(d) == {"miou", "pixel_accuracy", "mean_class_accuracy", "fwiou", "iou", "confusion_matrix"}
    assert d["iou"] == {"a": pytest.approx(2 / 3), "b": 0.5, "c": None}
    assert d["miou"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert d["pixel_accuracy"] == 0.75
    assert d["mean_class_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert d["fwiou"] == pytest.approx(3 / 4 * 2 / 3 + 1 / 4 * 1 / 2)
    assert d["confusion_matrix"] == m.tolist()
    json.dumps(d, allow_nan=False)
    empty = metrics_from_matrix(np.zeros((2, 2), np.int64)).to_dict()
    assert [empty[k] for k in ("miou", "pixel_accuracy", "mean_class_accuracy", "fwiou")] == [None] * 4
    assert empty["iou"] == {"class_0": None, "class_1": None}


def test_format_table_text():
    # a: 2/3 = 66.7 %, b: 1/2 = 50.0 %, c: absent; mIoU 58.3 %, pixel acc 3/4 = 75.0 %
    m = np.array([[2, 1, 0], [0, 1, 0], [0, 0, 0]], np.int64)
    assert metrics_from_matrix(m, ["a", "b", "c"]).format_table() == "\n".join([
        "class  IoU",
        "a       66.7",
        "b       50.0",
        "c        n/a",
        "mIoU    58.3",
        "pixel acc   75.0",
    ])
    long = metrics_from_matrix(np.array([[1, 1], [0, 2]], np.int64), ["background", "x"]).format_table()
    assert long.splitlines() == [
        "class       IoU",
        "background   50.0",  # 1/2
        "x            66.7",  # 2/3
        "mIoU         58.3",
        "pixel acc    75.0",
    ]


def test_confusion_matrix_defaults_ignore_index_and_validation():
    gt = np.array([0, 1, 255, 2, 255], np.uint8)
    pred = np.array([0, 2, 1, 2, 0], np.uint8)
    cm = ConfusionMatrix(3)  # ignore_index=255 by default
    assert cm.ignore_index == 255
    np.testing.assert_array_equal(cm.update(gt, pred).matrix, [[1, 0, 0], [0, 0, 1], [0, 0, 1]])
    # a custom ignore index is honoured by update
    cm2 = ConfusionMatrix(3, ignore_index=2).update(np.array([0, 2, 1], np.uint8), np.array([0, 0, 1], np.uint8))
    np.testing.assert_array_equal(cm2.matrix, [[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    # None: every label counts, so a 255 label is an error
    none = ConfusionMatrix(2, ignore_index=None)
    assert none.ignore_index is None
    np.testing.assert_array_equal(none.update(np.array([0, 1], np.uint8), np.array([1, 1], np.uint8)).matrix,
                                  [[0, 1], [0, 1]])
    with pytest.raises(InvalidArgumentError, match="gt: label 255"):
        none.update(np.array([255], np.uint8), np.array([0], np.uint8))
    one = ConfusionMatrix(1)  # a single class is allowed
    assert one.update(np.zeros(4, np.uint8), np.zeros(4, np.uint8)).results().miou == 1.0
    with pytest.raises(InvalidArgumentError, match=r"\bnum_classes\b"):
        ConfusionMatrix(0)
    with pytest.raises(InvalidTypeError, match="ignore_index"):
        ConfusionMatrix(3, ignore_index="x")
    with pytest.raises(InvalidArgumentError, match="ignore_index"):
        ConfusionMatrix(3, ignore_index=2**40)


@pytest.mark.parametrize("ignore_index", [255, 0, None])
def test_merge_keeps_num_classes_ignore_index_and_class_names(ignore_index):
    names = ["a", "b", "c"]
    left = ConfusionMatrix(3, ignore_index=ignore_index, class_names=names)
    right = ConfusionMatrix(3, ignore_index=ignore_index, class_names=names)
    left.matrix[...] = [[1, 0, 0], [0, 2, 0], [0, 0, 0]]
    right.matrix[...] = [[0, 1, 0], [0, 0, 0], [0, 0, 3]]
    merged = left.merge(right)
    assert merged.num_classes == 3 and merged.ignore_index == ignore_index and merged.class_names == names
    np.testing.assert_array_equal(merged.matrix, [[1, 1, 0], [0, 2, 0], [0, 0, 3]])
    assert merged.matrix is not left.matrix and merged.matrix is not right.matrix
    assert merged.results().class_names == names
    # the merged matrix goes on counting with the same rules
    merged.update(np.array([2, 1], np.uint8), np.array([2, 1], np.uint8))
    np.testing.assert_array_equal(merged.matrix, [[1, 1, 0], [0, 3, 0], [0, 0, 4]])
    assert left.matrix.sum() == 3 and right.matrix.sum() == 4
    unnamed = ConfusionMatrix(2).merge(ConfusionMatrix(2))
    assert unnamed.class_names is None and unnamed.results().class_names == ["class_0", "class_1"]


def test_merge_rejects_other_types_and_settings():
    with pytest.raises(InvalidTypeError, match=r"other: .*\bstr\b"):
        ConfusionMatrix(2).merge("x")
    with pytest.raises(InvalidArgumentError, match="other"):
        ConfusionMatrix(2).merge(ConfusionMatrix(2, ignore_index=None))
