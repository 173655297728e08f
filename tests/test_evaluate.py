"""Tests of mtkseg.evaluate and the eval/compare CLI (no TensorFlow).

The scoring logic is checked with stand-in segmenters whose answers are known exactly (a colour
decoder that recovers the ground truth, a constant predictor) against independent numpy counts;
the real Segmenter path is checked on a small float TFLite model from the test fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from mtkseg.data import SegmentationDataset
from mtkseg.evaluate import compare_models, draw_iou_bars, evaluate_model
from mtkseg.metrics import metrics_from_matrix

PALETTE = np.array([[128, 128, 128], [128, 64, 128], [64, 0, 128]], np.uint8)  # RGB


def make_dataset(root: Path, n=5, size=(20, 30), seed=0) -> Path:
    """Images painted with the palette colour of their mask (void pixels black)."""
    rng = np.random.default_rng(seed)
    classes = {"num_classes": 3, "ignore_index": 255, "classes": {
        str(i): {"name": name, "color": PALETTE[i].tolist()} for i, name in enumerate(["sky", "road", "car"])}}
    (root / "images" / "test").mkdir(parents=True)
    (root / "masks" / "test").mkdir(parents=True)
    (root / "classes.json").write_text(json.dumps(classes))
    for i in range(n):
        mask = rng.integers(0, 3, size, dtype=np.uint8)
        mask[: 2 + i] = 255
        rgb = np.zeros((*size, 3), np.uint8)
        rgb[mask != 255] = PALETTE[mask[mask != 255]]
        cv2.imwrite(str(root / "images" / "test" / f"im{i}.png"), rgb[..., ::-1])
        cv2.imwrite(str(root / "masks" / "test" / f"im{i}.png"), mask)
    return root


class ColourDecoder:
    """Predicts the palette class nearest to each pixel's colour (= the ground truth here)."""

    def __init__(self, model, num_threads):
        self.calls = 0

    def run(self, frame_bgr):
        self.calls += 1
        rgb = frame_bgr[..., ::-1].astype(int)
        dist = ((rgb[:, :, None, :] - PALETTE[None, None].astype(int)) ** 2).sum(-1)
        return SimpleNamespace(mask=dist.argmin(-1).astype(np.uint8))


class Constant:
    def __init__(self, model, num_threads):
        pass

    def run(self, frame_bgr):
        return SimpleNamespace(mask=np.zeros(frame_bgr.shape[:2], np.uint8))


def _gt_stack(root):
    return np.stack([m for _, m in SegmentationDataset(root, "test")])


def test_evaluate_perfect_and_constant_predictors(tmp_path):
    root = make_dataset(tmp_path / "ds")
    rep = evaluate_model("oracle.tflite", root, split="test", progress=False, segmenter_factory=ColourDecoder)
    gt = _gt_stack(root)
    valid = gt != 255
    assert rep.num_images == 5 and rep.metrics.matrix.sum() == valid.sum()
    np.testing.assert_allclose(rep.metrics.iou, 1.0)
    assert rep.metrics.miou == 1.0 and rep.metrics.pixel_accuracy == 1.0

    rep0 = evaluate_model("zero.tflite", root, progress=False, segmenter_factory=Constant, limit=3)
    gt3 = gt[:3][gt[:3] != 255]
    expected_iou0 = np.sum(gt3 == 0) / gt3.size  # TP / (TP + FP), FN = 0
    np.testing.assert_allclose(rep0.metrics.iou, [expected_iou0, 0.0, 0.0])
    assert rep0.num_images == 3
    d = rep0.to_dict()
    assert d["split"] == "test" and d["iou"]["road"] == 0.0 and json.dumps(d)


def test_compare_reports_delta_agreement_and_examples(tmp_path):
    root = make_dataset(tmp_path / "ds")
    factories = iter([ColourDecoder, Constant])
    rep = compare_models("a.tflite", "b.tflite", root, out_dir=tmp_path / "cmp", num_examples=2, progress=False,
                         segmenter_factory=lambda m, t: next(factories)(m, t))
    gt = _gt_stack(root)
    # void pixels are painted black; the decoder maps them to the palette colour nearest to black
    black_class = int(np.argmin((PALETTE.astype(int) ** 2).sum(1)))
    decoded = np.where(gt == 255, black_class, gt)
    per_image = [(d == 0).mean() for d in decoded]
    assert rep.agreement == pytest.approx((decoded == 0).mean())
    np.testing.assert_allclose(rep.per_image_agreement, per_image)
    np.testing.assert_allclose(rep.iou_delta, rep.metrics_b.iou - 1.0)
    assert len(rep.examples) == 2 and all(p.is_file() for p in rep.examples)
    worst_two = {f"diff_im{i}.png" for i in np.argsort(per_image)[:2]}
    assert {p.name for p in rep.examples} == worst_two
    panel = cv2.imread(str(rep.examples[0]))
    assert panel.shape == (20 + 22, 5 * 30, 3)
    assert "mIoU" in rep.format_table()


def test_iou_bar_chart_bar_lengths(tmp_path):
    m = metrics_from_matrix(np.array([[6, 0, 0], [0, 3, 3], [0, 0, 0]], np.int64), ["a", "b", "c"])
    # a: 6/6 = 1.0, b: 3/6 = 0.5, c: 0/3 = 0.0
    path = draw_iou_bars(m, tmp_path / "bars.png", title="t", palette_rgb=PALETTE)
    img = cv2.imread(str(path))
    widths = []
    for i, colour in enumerate(PALETTE[:2]):
        row = img[40 + i * 24 + 12]
        match = np.all(row == colour[::-1], axis=1)
        widths.append(int(match.sum()))
    assert widths[0] == pytest.approx(400, abs=3) and widths[1] == pytest.approx(200, abs=3)


FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"


def test_evaluate_through_segmenter_matches_interpreter_reference(tmp_path):
    """The real Segmenter path vs. an independent reference: OpenCV resize, the sidecar's
    normalisation, a plain LiteRT interpreter, argmax, nearest upscaling, scikit-learn counts."""
    from ai_edge_litert.interpreter import Interpreter
    from sklearn.metrics import confusion_matrix

    root = make_dataset(tmp_path / "ds", n=3, size=(40, 60))
    model = tmp_path / "m.tflite"
    model.write_bytes((FIXTURES / "sidecar.tflite").read_bytes())
    (tmp_path / "m.json").write_text((FIXTURES / "sidecar.json").read_text())
    side = json.loads((FIXTURES / "sidecar.json").read_text())
    rep = evaluate_model(model, root, split="test", progress=False)

    interp = Interpreter(model_path=str(model))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    h, w = inp["shape"][1:3]
    mean, std = np.array(side["normalization"]["mean"]), np.array(side["normalization"]["std"])
    gts, preds = [], []
    for image, gt in SegmentationDataset(root, "test"):
        x = (cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) - mean) / std
        interp.set_tensor(inp["index"], x[None].astype(np.float32))
        interp.invoke()
        small = interp.get_tensor(out["index"])[0].argmax(-1).astype(np.uint8)
        preds.append(cv2.resize(small, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_NEAREST))
        gts.append(gt)
    gt_all, pred_all = np.concatenate([g.ravel() for g in gts]), np.concatenate([p.ravel() for p in preds])
    keep = gt_all != 255
    expected = confusion_matrix(gt_all[keep], pred_all[keep], labels=[0, 1, 2])
    assert rep.metrics.matrix.sum() == expected.sum()
    # bilinear resize implementations may round a few boundary pixels differently
    assert np.abs(rep.metrics.matrix - expected).sum() <= 0.02 * expected.sum()
    assert rep.metrics.miou == pytest.approx(metrics_from_matrix(expected).miou, abs=0.02)
