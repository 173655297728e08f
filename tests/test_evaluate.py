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


def _reference_predictions(model: Path, root: Path, mean, std, *, swap_colour=False):
    """Masks from an independent pipeline: the dataset's RGB image, OpenCV float resize, (x -
    mean) / std, a plain LiteRT interpreter, argmax, nearest upscaling.  ``swap_colour`` and
    unit ``mean``/``std`` plant the bugs the tolerances below must catch."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    h, w = inp["shape"][1:3]
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    gts, preds = [], []
    for image, gt in SegmentationDataset(root, "test"):
        if swap_colour:
            image = np.ascontiguousarray(image[..., ::-1])
        x = (cv2.resize(image.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) - mean) / std
        interp.set_tensor(inp["index"], x[None].astype(np.float32))
        interp.invoke()
        small = interp.get_tensor(out["index"])[0].argmax(-1).astype(np.uint8)
        preds.append(cv2.resize(small, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_NEAREST))
        gts.append(gt)
    return gts, preds


def _numpy_confusion(gts, preds, num_classes=3, ignore=255):
    """Rows gt, columns prediction, ignore pixels skipped: np.add.at over the flat masks."""
    m = np.zeros((num_classes, num_classes), np.int64)
    for g, p in zip(gts, preds):
        keep = g != ignore
        np.add.at(m, (g[keep].astype(int), p[keep].astype(int)), 1)
    return m


def _numpy_miou(m):
    iou = np.diag(m) / (m.sum(0) + m.sum(1) - np.diag(m))
    return float(np.nanmean(iou))


def _sidecar_model(tmp_path: Path, name="m", normalisation=True) -> Path:
    model = tmp_path / f"{name}.tflite"
    model.write_bytes((FIXTURES / "sidecar.tflite").read_bytes())
    side = json.loads((FIXTURES / "sidecar.json").read_text())
    if not normalisation:
        del side["normalization"]
    (tmp_path / f"{name}.json").write_text(json.dumps(side))
    return model


SIDE = json.loads((FIXTURES / "sidecar.json").read_text())
MEAN, STD = SIDE["normalization"]["mean"], SIDE["normalization"]["std"]
#: Tolerances of the Segmenter's evaluation against the reference, just above the measured error:
#: 0 of 6660 confusion-matrix counts differ and mIoU agrees exactly (3 images of 40x60).  The
#: planted bugs move far more: BGR fed to the RGB model 190 counts (2.9 %) and mIoU +0.0103; the
#: sidecar normalisation ignored (x/255) 1118 counts (17 %) and mIoU -0.0093.
CM_TOL = 0.002  # share of counts that may differ (13 of 6660)
MIOU_TOL = 0.002


def test_evaluate_through_segmenter_matches_interpreter_reference(tmp_path):
    """The real Segmenter path vs. an independent reference: OpenCV resize, the sidecar's
    normalisation, a plain LiteRT interpreter, argmax, nearest upscaling, scikit-learn counts."""
    from sklearn.metrics import confusion_matrix

    root = make_dataset(tmp_path / "ds", n=3, size=(40, 60))
    model = _sidecar_model(tmp_path)
    rep = evaluate_model(model, root, split="test", progress=False)

    gts, preds = _reference_predictions(model, root, MEAN, STD)
    gt_all, pred_all = np.concatenate([g.ravel() for g in gts]), np.concatenate([p.ravel() for p in preds])
    keep = gt_all != 255
    expected = confusion_matrix(gt_all[keep], pred_all[keep], labels=[0, 1, 2])
    assert rep.metrics.matrix.sum() == expected.sum()
    assert np.abs(rep.metrics.matrix - expected).sum() <= CM_TOL * expected.sum()
    assert rep.metrics.miou == pytest.approx(metrics_from_matrix(expected).miou, abs=MIOU_TOL)


def test_evaluation_tolerances_reject_colour_and_normalisation_bugs(tmp_path):
    """A Segmenter that fed BGR to the RGB model, or ignored the sidecar's normalisation, would
    fail the tolerances above (the buggy variants computed with the reference)."""
    root = make_dataset(tmp_path / "ds", n=3, size=(40, 60))
    model = _sidecar_model(tmp_path)
    good = _numpy_confusion(*_reference_predictions(model, root, MEAN, STD))
    for kwargs in ({"swap_colour": True, "mean": MEAN, "std": STD}, {"mean": (0, 0, 0), "std": (255, 255, 255)}):
        bad = _numpy_confusion(*_reference_predictions(model, root, **kwargs))
        assert np.abs(bad - good).sum() > CM_TOL * good.sum(), kwargs
        assert abs(_numpy_miou(bad) - _numpy_miou(good)) > MIOU_TOL, kwargs


def _cli(*args, cwd):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "mtkseg.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=180, cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_eval_cli_confusion_matrix_matches_numpy(tmp_path):
    """``python -m mtkseg.cli eval``: the JSON's confusion matrix and mIoU against numpy counts of
    the reference masks (tolerances CM_TOL / MIOU_TOL), the chart a PNG of the stated size."""
    root = make_dataset(tmp_path / "ds", n=3, size=(40, 60))
    model = _sidecar_model(tmp_path)
    js, chart = tmp_path / "eval.json", tmp_path / "eval.png"
    text = _cli("eval", model, "--data", root, "--json", js, "--chart", chart, "--delegate", "cpu", "--threads", "1",
                "--no-progress", cwd=tmp_path)
    doc = json.loads(js.read_text())
    expected = _numpy_confusion(*_reference_predictions(model, root, MEAN, STD))
    got = np.asarray(doc["confusion_matrix"], np.int64)
    assert got.shape == (3, 3) and got.sum() == expected.sum()
    assert np.abs(got - expected).sum() <= CM_TOL * expected.sum()
    assert doc["miou"] == pytest.approx(_numpy_miou(expected), abs=MIOU_TOL)
    assert doc["num_images"] == 3 and set(doc["iou"]) == {"sky", "road", "car"}
    assert f"{100 * doc['miou']:.1f}" in text
    img = cv2.imread(str(chart))
    assert img is not None and img.ndim == 3


def test_compare_cli_agreement_matches_reference(tmp_path):
    """``python -m mtkseg.cli compare`` of the sidecar model with and without its normalisation:
    compare.json's agreement and mIoU delta against the two reference pipelines."""
    root = make_dataset(tmp_path / "ds", n=3, size=(40, 60))
    a, b = _sidecar_model(tmp_path, "a"), _sidecar_model(tmp_path, "b", normalisation=False)
    out = tmp_path / "cmp"
    _cli("compare", a, b, "--data", root, "--out", out, "--examples", "1", "--delegate", "cpu", "--threads", "1",
         "--no-progress", cwd=tmp_path)
    doc = json.loads((out / "compare.json").read_text())
    gts, pa = _reference_predictions(a, root, MEAN, STD)
    _, pb = _reference_predictions(b, root, (0, 0, 0), (255, 255, 255))
    agreement = np.mean(np.concatenate([(x == y).ravel() for x, y in zip(pa, pb)]))
    # measured: equal to the reference's agreement to 1e-12 (both Segmenter runs match it exactly)
    assert doc["pixel_agreement"] == pytest.approx(agreement, abs=CM_TOL)
    cm_a, cm_b = _numpy_confusion(gts, pa), _numpy_confusion(gts, pb)
    for key, expected in (("a", cm_a), ("b", cm_b)):
        got = np.asarray(doc[key]["confusion_matrix"], np.int64)
        assert np.abs(got - expected).sum() <= CM_TOL * expected.sum(), key
    assert doc["miou_delta"] == pytest.approx(_numpy_miou(cm_b) - _numpy_miou(cm_a), abs=2 * MIOU_TOL)
    assert len(list(out.glob("*.png"))) == 1
