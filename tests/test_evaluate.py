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


# ----------------------------------------------------------------------------- reports, charts, files by hand

from mtkseg import evaluate as _evaluate  # noqa: E402
from mtkseg.errors import DataError, InvalidArgumentError, InvalidTypeError, OutputError, OutputExistsError  # noqa: E402
from mtkseg.evaluate import CompareReport, EvalReport, side_by_side, write_json  # noqa: E402
from mtkseg.options import SegmenterOptions  # noqa: E402

NAMES = ["sky", "road", "car"]
#: sky 2/3, road 1/2, car absent (NaN); mIoU 7/12, pixel accuracy 3/4
MATRIX_A = np.array([[2, 1, 0], [0, 1, 0], [0, 0, 0]], np.int64)
#: sky 3/3, road 0/1, car 0/1 (one false positive); mIoU 1/3, pixel accuracy 3/4
MATRIX_B = np.array([[3, 0, 0], [0, 0, 1], [0, 0, 0]], np.int64)


def _compare_report(examples=()):
    return CompareReport("a.tflite", "b.tflite", "val", 2, metrics_from_matrix(MATRIX_A, NAMES),
                         metrics_from_matrix(MATRIX_B, NAMES), 0.75, [0.5, 1.0], list(examples))


def test_compare_report_table_text():
    s = " "
    assert _compare_report().format_table().splitlines() == [
        "class" + s * 7 + "IoU A" + s * 3 + "IoU B" + s * 5 + "B-A",
        "sky" + s * 10 + "66.7" + s * 3 + "100.0" + s * 3 + "+33.3",
        "road" + s * 9 + "50.0" + s * 5 + "0.0" + s * 3 + "-50.0",
        "car" + s * 11 + "n/a" + s * 5 + "0.0" + s * 5 + "n/a",
        "mIoU" + s * 9 + "58.3" + s * 4 + "33.3" + s * 3 + "-25.0",
        "pixel acc" + s * 4 + "75.0" + s * 4 + "75.0" + s * 4 + "+0.0",
        "pixel agreement A vs B: 75.00%",
    ]
    swapped = CompareReport("b", "a", "val", 2, metrics_from_matrix(MATRIX_B, NAMES),
                            metrics_from_matrix(MATRIX_A, NAMES), 0.5, [], []).format_table().splitlines()
    assert swapped[4] == "mIoU" + s * 9 + "33.3" + s * 4 + "58.3" + s * 3 + "+25.0"
    assert swapped[1] == "sky" + s * 9 + "100.0" + s * 4 + "66.7" + s * 3 + "-33.3"
    assert swapped[-1] == "pixel agreement A vs B: 50.00%"


def test_compare_report_to_dict():
    d = _compare_report([Path("out") / "diff_x.png"]).to_dict()
    assert set(d) == {"model_a", "model_b", "split", "num_images", "pixel_agreement", "iou_delta", "miou_delta",
                      "a", "b", "examples"}
    assert (d["model_a"], d["model_b"], d["split"], d["num_images"]) == ("a.tflite", "b.tflite", "val", 2)
    assert d["pixel_agreement"] == 0.75
    assert d["iou_delta"] == {"sky": pytest.approx(1 / 3), "road": -0.5, "car": None}
    assert d["miou_delta"] == pytest.approx(1 / 3 - 7 / 12)
    assert d["a"]["confusion_matrix"] == MATRIX_A.tolist() and d["b"]["confusion_matrix"] == MATRIX_B.tolist()
    assert d["a"]["miou"] == pytest.approx(7 / 12) and d["b"]["miou"] == pytest.approx(1 / 3)
    assert d["examples"] == [str(Path("out") / "diff_x.png")]
    json.dumps(d, allow_nan=False)


def test_eval_report_to_dict_rounding():
    rep = EvalReport("m.tflite", "ds", "val", 3, 0.370368, metrics_from_matrix(MATRIX_A, NAMES))
    d = rep.to_dict()
    assert set(d) == {"model", "data", "split", "num_images", "seconds", "ms_per_image", "miou", "pixel_accuracy",
                      "mean_class_accuracy", "fwiou", "iou", "confusion_matrix"}
    assert (d["model"], d["data"], d["split"], d["num_images"]) == ("m.tflite", "ds", "val", 3)
    assert d["seconds"] == 0.37 and d["ms_per_image"] == 123.46  # 0.370368 s, 123.456 ms per image
    assert d["miou"] == pytest.approx(7 / 12) and d["iou"]["car"] is None
    assert EvalReport("m", "d", "s", 0, 0.5, rep.metrics).ms_per_image == 500.0  # no division by zero


class _Clock:
    """perf_counter stand-in: every call is ``step`` seconds after the previous one."""

    def __init__(self, step):
        self.t, self.step = 0.0, step

    def perf_counter(self):
        self.t += self.step
        return self.t


def test_evaluate_model_report_fields_threads_and_timing(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "ds", n=3)
    calls = []

    def factory(model, num_threads):
        calls.append((model, num_threads))
        return ColourDecoder(model, num_threads)

    monkeypatch.setattr(_evaluate, "time", _Clock(0.123456))  # each run() "takes" 0.123456 s
    rep = evaluate_model("oracle.tflite", root, progress=False, segmenter_factory=factory)
    assert calls == [("oracle.tflite", 2)]  # the default num_threads
    assert (rep.model, rep.data, rep.split, rep.num_images) == ("oracle.tflite", str(root), "test", 3)
    assert rep.seconds == pytest.approx(3 * 0.123456) and rep.ms_per_image == pytest.approx(123.456)
    assert rep.to_dict()["seconds"] == 0.37 and rep.to_dict()["ms_per_image"] == 123.46
    assert rep.metrics.class_names == NAMES
    evaluate_model(Path("x.tflite"), root, num_threads=1, progress=False, segmenter_factory=factory)
    assert calls[-1] == (Path("x.tflite"), 1)


def test_evaluate_and_compare_limits_and_option_checks(tmp_path):
    root = make_dataset(tmp_path / "ds", n=3)
    one = make_dataset(tmp_path / "one", n=1)
    assert evaluate_model("m", root, limit=1, progress=False, segmenter_factory=Constant).num_images == 1
    assert evaluate_model("m", root, limit=10, progress=False, segmenter_factory=Constant).num_images == 3
    assert evaluate_model("m", one, progress=False, segmenter_factory=Constant).num_images == 1
    for limit in (0, -2):
        with pytest.raises(InvalidArgumentError, match=r"^limit: "):
            evaluate_model("m", root, limit=limit, progress=False, segmenter_factory=Constant)
    rep = compare_models("a", "b", root, limit=2, progress=False, segmenter_factory=Constant)
    assert rep.num_images == 2 and len(rep.per_image_agreement) == 2
    for run in (lambda **kw: evaluate_model("m", root, progress=False, **kw),
                lambda **kw: compare_models("a", "b", root, progress=False, **kw)):
        with pytest.raises(InvalidArgumentError, match=r"^options: "):
            run(segmenter_factory=Constant, options=SegmenterOptions())
        with pytest.raises(InvalidTypeError, match=r"^options: .*\bstr\b"):
            run(options="cpu")


def test_options_reach_the_segmenter(tmp_path, monkeypatch):
    """Without a factory a Segmenter is opened from ``options``: model filled in, num_threads
    taken from the options when they set it, else from the num_threads argument."""
    import mtkseg.segmenter

    opened = []

    class FakeSegmenter:
        def __init__(self, options):
            opened.append(options)

        def run(self, frame):
            return SimpleNamespace(mask=np.zeros(frame.shape[:2], np.uint8))

    monkeypatch.setattr(mtkseg.segmenter, "Segmenter", FakeSegmenter)
    root = make_dataset(tmp_path / "ds", n=1)
    evaluate_model(Path("m.tflite"), root, progress=False)
    assert opened == [SegmenterOptions(model="m.tflite", num_threads=2)]
    evaluate_model("m.tflite", root, num_threads=3, progress=False, options=SegmenterOptions(delegate="cpu"))
    assert opened[-1] == SegmenterOptions(model="m.tflite", delegate="cpu", num_threads=3)
    evaluate_model("m.tflite", root, num_threads=3, progress=False, options=SegmenterOptions(num_threads=1))
    assert opened[-1] == SegmenterOptions(model="m.tflite", num_threads=1)
    opened.clear()
    compare_models("a.tflite", "b.tflite", root, num_threads=4, progress=False,
                   options=SegmenterOptions(upsample="bilinear"))
    assert opened == [SegmenterOptions(model=m, upsample="bilinear", num_threads=4) for m in ("a.tflite", "b.tflite")]


def test_progress_bars_run(tmp_path, capsys):
    root = make_dataset(tmp_path / "ds", n=2)
    assert evaluate_model("m.tflite", root, segmenter_factory=Constant).num_images == 2  # progress=True
    assert compare_models("a", "b", root, segmenter_factory=Constant).agreement == 1.0


def test_predicted_mask_of_the_wrong_size_names_the_model(tmp_path):
    root = make_dataset(tmp_path / "ds", n=1)

    class Small:
        def __init__(self, model, num_threads):
            pass

        def run(self, frame):
            return SimpleNamespace(mask=np.zeros((3, 3), np.uint8))

    with pytest.raises(DataError, match="bad.tflite"):
        evaluate_model("bad.tflite", root, progress=False, segmenter_factory=Small)
    for model_a, model_b in (("bad.tflite", "good.tflite"), ("good.tflite", "bad.tflite")):
        with pytest.raises(DataError, match="bad.tflite"):
            compare_models(model_a, model_b, root, progress=False,
                           segmenter_factory=lambda m, t: (Small if m == "bad.tflite" else Constant)(m, t))


class Flipper:
    """The ground-truth decoder's mask with the first FLIPS[k] share of pixels of the k-th image
    changed, so its agreement with ColourDecoder on image k is exactly 1 - FLIPS[k]."""

    FLIPS = [0.5, 0.1, 0.4, 0.05, 0.2, 0.3]

    def __init__(self, model, num_threads):
        self.k = 0

    def run(self, frame):
        mask = ColourDecoder(None, 1).run(frame).mask.ravel().copy()
        n = int(round(self.FLIPS[self.k] * mask.size))
        mask[:n] = (mask[:n] + 1) % 3
        self.k += 1
        return SimpleNamespace(mask=mask.reshape(frame.shape[:2]))


def _ab_factory(calls=None):
    """compare_models opens model A first, then B: A decodes the ground truth, B is a Flipper."""
    kinds = iter([ColourDecoder, Flipper])

    def factory(model, num_threads):
        if calls is not None:
            calls.append((model, num_threads))
        return next(kinds)(model, num_threads)
    return factory


def test_compare_keeps_the_most_different_examples_in_order(tmp_path):
    root = make_dataset(tmp_path / "ds", n=6)
    calls = []
    rep = compare_models("a.tflite", "b.tflite", root, out_dir=tmp_path / "four", progress=False,
                         segmenter_factory=_ab_factory(calls))
    assert calls == [("a.tflite", 2), ("b.tflite", 2)]
    assert (rep.model_a, rep.model_b, rep.split, rep.num_images) == ("a.tflite", "b.tflite", "test", 6)
    assert rep.metrics_a.class_names == NAMES and rep.metrics_b.class_names == NAMES
    np.testing.assert_allclose(rep.per_image_agreement, 1 - np.array(Flipper.FLIPS))
    assert rep.agreement == pytest.approx(1 - np.mean(Flipper.FLIPS))
    # default num_examples=4, most different first: im0 (50 %), im2 (40 %), im5 (30 %), im4 (20 %)
    assert [p.name for p in rep.examples] == ["diff_im0.png", "diff_im2.png", "diff_im5.png", "diff_im4.png"]
    assert sorted(p.name for p in (tmp_path / "four").iterdir()) == sorted(p.name for p in rep.examples)
    panel = cv2.imread(str(rep.examples[0]))
    gt = SegmentationDataset(root, "test")[0][1]
    h, w = gt.shape
    assert panel.shape == (h + 22, 5 * w, 3)
    diff = panel[22:, 4 * w:]
    assert np.count_nonzero(np.all(diff == 255, axis=2)) == int(round(0.5 * h * w))
    gt_colour = np.zeros((h, w, 3), np.uint8)
    gt_colour[gt != 255] = PALETTE[gt[gt != 255]][:, ::-1]
    np.testing.assert_array_equal(panel[22:, w:2 * w], gt_colour)
    for k, names in ((2, ["diff_im0.png", "diff_im2.png"]), (1, ["diff_im0.png"]), (0, [])):
        out = tmp_path / f"n{k}"
        rep = compare_models("a.tflite", "b.tflite", root, out_dir=out, num_examples=k, progress=False,
                             segmenter_factory=_ab_factory())
        assert [p.name for p in rep.examples] == names
        assert sorted(p.name for p in out.iterdir()) == sorted(names)


def test_compare_output_files_overwrite_and_inputs(tmp_path):
    root = make_dataset(tmp_path / "ds", n=6)
    out = tmp_path / "cmp"

    def run(model_a="a.tflite", out_dir=out, **kw):
        return compare_models(model_a, "b.tflite", root, out_dir=out_dir, num_examples=1, progress=False,
                              segmenter_factory=_ab_factory(), **kw)

    first = run()
    assert [p.name for p in first.examples] == ["diff_im0.png"]
    run()  # overwrite=True by default
    before = first.examples[0].read_bytes()
    with pytest.raises(OutputExistsError, match=r"^out_dir: "):
        run(overwrite=False)
    assert first.examples[0].read_bytes() == before
    # a model file where an example would go is never overwritten
    model = out / "diff_im0.png"
    with pytest.raises(OutputError, match=r"^out_dir: .*input"):
        run(model_a=model)
    assert model.read_bytes() == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"^out_dir: "):
        run(out_dir=tmp_path / "file")
    # two models that agree everywhere still get their panels
    same = compare_models("a", "b", root, out_dir=tmp_path / "same", num_examples=2, progress=False,
                          segmenter_factory=Constant)
    assert same.agreement == 1.0 and len(same.examples) == 2 and all(p.is_file() for p in same.examples)


def test_compare_agreement_on_a_single_pixel(tmp_path):
    root = make_dataset(tmp_path / "ds", n=1, size=(1, 1))
    rep = compare_models("a", "b", root, progress=False, segmenter_factory=Constant)
    assert rep.agreement == 1.0 and rep.per_image_agreement == [1.0]


def test_side_by_side_tiles():
    rng = np.random.default_rng(6)
    h, w = 12, 16
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    gt = rng.integers(0, 3, (h, w)).astype(np.uint8)
    gt[0] = 255  # void: black
    ma = rng.integers(0, 3, (h, w)).astype(np.uint8)
    mb = np.where(rng.random((h, w)) < 0.3, (ma + 1) % 3, ma).astype(np.uint8)
    panel = side_by_side(frame, gt, ma, mb, PALETTE)
    assert panel.dtype == np.uint8 and panel.shape == (h + 22, 5 * w, 3)
    bgr = PALETTE[:, ::-1]
    gt_colour = np.zeros((h, w, 3), np.uint8)
    gt_colour[gt != 255] = bgr[gt[gt != 255]]
    diff = np.repeat(np.where(ma != mb, 255, 0).astype(np.uint8)[..., None], 3, axis=2)
    expected = [frame, gt_colour, bgr[ma], bgr[mb], diff]
    for i, tile in enumerate(expected):
        np.testing.assert_array_equal(panel[22:, i * w:(i + 1) * w], tile)
        title = panel[:22, i * w:(i + 1) * w]
        assert np.count_nonzero(title.max(axis=2) < 128) > 0  # a title is drawn on each white bar
        assert np.count_nonzero(np.all(title == 255, axis=2)) > title.shape[0] * title.shape[1] // 2


def test_write_json_text_overwrite_and_inputs(tmp_path):
    out = tmp_path / "new" / "r.json"  # the folder is created
    assert write_json({"a": 1, "b": [2, None]}, out) == out
    assert out.read_text() == '{\n "a": 1,\n "b": [\n  2,\n  null\n ]\n}\n'
    write_json({"a": 2}, out)  # overwrite=True by default
    assert out.read_text() == '{\n "a": 2\n}\n'
    with pytest.raises(OutputExistsError, match=r"^json: "):
        write_json({"a": 3}, out, overwrite=False)
    with pytest.raises(OutputError, match=r"^json: .*input"):
        write_json({"a": 4}, out, inputs=[out])
    assert out.read_text() == '{\n "a": 2\n}\n'
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]  # no temporary file left behind
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"^json: "):
        write_json({}, tmp_path / "file" / "r.json")


# draw_iou_bars layout: rows of 24 px from y=40, bars from x=150, 400 px = IoU 1.0, the mIoU row
# after a one-row gap; a chart of n classes is (40 + 24 (n + 2) + 26) x 640.
LEFT, TOP, ROW = 150, 40, 24
CHART_PALETTE = np.array([[40, 160, 60], [70, 70, 200], [200, 160, 40], [160, 60, 200]], np.uint8)  # RGB


def _row_y(i, n):
    return TOP + i * ROW + (ROW if i == n else 0) + ROW // 2  # the middle of row i (i == n: mIoU)


def _bar_extent(img, y, colour_bgr, tol=0):
    row = img[y, LEFT - 1:LEFT + 403].astype(int)
    xs = np.flatnonzero(np.all(np.abs(row - np.asarray(colour_bgr, int)) <= tol, axis=1))
    return (None, None) if xs.size == 0 else (LEFT - 1 + xs.min(), LEFT - 1 + xs.max())


def _red_columns(img, y):
    px = img[y].astype(int)
    return np.flatnonzero((px[:, 2] > 200) & (px[:, 1] < 80) & (px[:, 0] < 80))


def test_iou_bar_chart_nan_rows_palette_mean_and_compare_marker(tmp_path):
    # a: 4/4 = 1.0, b: absent (NaN), c: 3/6 = 0.5, d: 0/3 = 0.0; mIoU 0.5
    m = metrics_from_matrix(np.array([[4, 0, 0, 0], [0, 0, 0, 0], [0, 0, 3, 3], [0, 0, 0, 0]], np.int64),
                            ["a", "b", "c", "d"])
    # other model: a 3/4, b 0/1 (predicted once), c and d absent (NaN); mIoU 0.375
    other = metrics_from_matrix(np.array([[3, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.int64),
                                ["a", "b", "c", "d"])
    n = 4
    path = draw_iou_bars(m, tmp_path / "bars.png", palette_rgb=CHART_PALETTE, compare_to=other)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img.shape == (TOP + ROW * (n + 2) + 26, LEFT + 400 + 90, 3)
    bgr = CHART_PALETTE[:, ::-1]
    for i, length in ((0, 400), (2, 200)):  # class colour (RGB palette drawn in BGR), length 400 x IoU
        x0, x1 = _bar_extent(img, _row_y(i, n), bgr[i])
        assert x0 == pytest.approx(LEFT, abs=1) and x1 == pytest.approx(LEFT + length, abs=1), i
    x0, x1 = _bar_extent(img, _row_y(n, n), (60, 60, 60), tol=8)  # mIoU: grey
    assert x0 == pytest.approx(LEFT, abs=1) and x1 == pytest.approx(LEFT + 200, abs=1)
    # b is NaN: no bar, an "n/a" label where the bar would start
    yb = TOP + 1 * ROW
    band = img[yb:yb + ROW, LEFT:LEFT + 403].astype(int)
    assert not np.any(np.all(np.abs(band[:, :, None, :] - bgr[None, None].astype(int)) <= 8, axis=3))
    dark = band.max(axis=2) < 100
    assert dark[:, :45].sum() > 10 and not dark[:, 45:].any()
    # the gap row holds nothing but the grid
    gap = img[TOP + n * ROW + 2:TOP + n * ROW + ROW - 2, LEFT + 2:LEFT + 398]
    assert gap.min() >= 200
    # compare_to markers at 400 x the other IoU; none where the other IoU is NaN (or this one is)
    for i, x in ((0, LEFT + 300), (n, LEFT + 150)):
        cols = _red_columns(img, _row_y(i, n))
        assert cols.size and abs(cols.mean() - x) <= 1.5, i
    for i in (1, 2, 3):
        assert _red_columns(img, _row_y(i, n)).size == 0, i
    # without a palette every bar is grey; without compare_to there are no markers
    plain = cv2.imread(str(draw_iou_bars(m, tmp_path / "plain.png")))
    x0, x1 = _bar_extent(plain, _row_y(0, n), (60, 60, 60), tol=8)
    assert x0 == pytest.approx(LEFT, abs=1) and x1 == pytest.approx(LEFT + 400, abs=1)
    assert not any(_red_columns(plain, _row_y(i, n)).size for i in range(n + 1))


def test_iou_bar_chart_files(tmp_path):
    m = metrics_from_matrix(np.array([[1, 1], [0, 2]], np.int64), ["x", "y"])
    target = tmp_path / "chart.png"
    draw_iou_bars(m, target)
    first = target.read_bytes()
    draw_iou_bars(m, target, title="again")  # overwrite=True by default
    assert target.read_bytes() != first
    again = target.read_bytes()
    with pytest.raises(OutputExistsError, match=r"^chart: "):
        draw_iou_bars(m, target, overwrite=False)
    assert target.read_bytes() == again
    bare = draw_iou_bars(m, tmp_path / "chart")  # no suffix: PNG
    assert bare.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InvalidArgumentError, match=r"\.png"):
        draw_iou_bars(m, tmp_path / "chart.xyz")
    assert not (tmp_path / "chart.xyz").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"^chart: "):
        draw_iou_bars(m, tmp_path / "file" / "c.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart", "chart.png", "file"]
