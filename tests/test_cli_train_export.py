"""``mtkseg train`` / ``mtkseg export`` through the CLI, and a learning test (train extra).

The CLI test runs ``python -m mtkseg.cli train`` and ``export`` in subprocesses on a tiny
synthetic dataset and checks what they wrote against independent readers: config.json and
log.csv as plain JSON/CSV, the float32 .tflite against the Keras model rebuilt from the run's
config and weights, the int8 model's argmax against the same Keras model, the labels in the
model's metadata (the appended zip, read with zipfile) and in the sidecar, and the refusal to
overwrite without ``--overwrite``.  The learning test trains a tiny UNet in-process and asks
for a falling loss and a high train-set mIoU counted with numpy.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytestmark = pytest.mark.train

LABELS = ["bg", "red", "green", "blue"]
COLOURS = np.array([[90, 90, 90], [200, 40, 40], [40, 200, 40], [40, 40, 200]], np.uint8)  # image RGB per class
SIZE = (32, 48)  # H x W of the images, the masks and the models (native = input size: no resizing)

# Measured with this file's recipe (x86-64 CPU, TF 2.x, seeds fixed: the runs repeat exactly);
# each bound sits just outside its measurement, with room for another CPU's float rounding.
FLOAT32_ATOL = 3e-6  # max |tflite - keras| logit difference: measured 6.4e-7 (logits span 1.6);
#                      swapping the input channels (a planted bug) moves the logits by 1.29
INT8_AGREEMENT = 0.93  # int8 (uint8 I/O) argmax = keras argmax: measured 0.954 after 3 epochs
#                        (logits still close together); swapped channels give 0.659
LEARN_MIOU = 0.88  # train-set mIoU after 30 epochs: measured 0.916 (loss 1.633 -> 0.244)


def _synthetic_dataset(root: Path, n_train=8, n_val=2, size=SIZE, seed=0) -> Path:
    """test_train's generator with smaller rectangles (sides 6-11 px): three colour-coded classes on
    a grey background class, a void left border (label 255) and a little noise; the image colour
    determines the label, so it can be learnt."""
    from test_train import _synthetic_dataset as generate

    return generate(root, n_train, n_val, size, rect=(6, 12), seed=seed)


def _load_split(root: Path, split: str):
    """Images (RGB uint8) and masks read back with OpenCV, independent of mtkseg.data."""
    names = sorted(p.name for p in (root / "images" / split).glob("*.png"))
    images = np.stack([cv2.imread(str(root / "images" / split / n))[..., ::-1] for n in names])
    masks = np.stack([cv2.imread(str(root / "masks" / split / n), cv2.IMREAD_UNCHANGED) for n in names])
    return images, masks


def _cli(*args, cwd, expect=0):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-m", "mtkseg.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)
    assert proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _numpy_miou(gt, pred, num_classes=4, ignore=255):
    valid = gt != ignore
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (gt[valid].astype(int), pred[valid].astype(int)), 1)
    tp = np.diag(cm).astype(float)
    union = cm.sum(0) + cm.sum(1) - tp
    present = union > 0
    return float(np.mean(tp[present] / union[present]))


def _interpreter(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    return interp


def _tflite_logits(interp, image_rgb_uint8: np.ndarray) -> np.ndarray:
    """Run one image: float inputs get x / 255 (the exported normalisation), quantized inputs
    get the input tensor's own (scale, zero point); outputs come back dequantized."""
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    x = image_rgb_uint8.astype(np.float32)[None] / 255.0
    if inp["dtype"] != np.float32:
        scale, zero = inp["quantization"]
        info = np.iinfo(inp["dtype"])
        x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    y = interp.get_tensor(out["index"])[0]
    if out["dtype"] != np.float32:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y


def test_cli_train_then_export_float32_and_int8(tmp_path):
    data = _synthetic_dataset(tmp_path / "data")
    run = tmp_path / "run"
    epochs = 3
    _cli("train", "--data", data, "--out", run, "--arch", "unet", "--base", 4, "--depth", 3,
         "--input-size", "32x48", "--epochs", epochs, "--batch-size", 4, "--lr", "3e-3", "--seed", 7,
         "--flip-p", 0.25, "--class-weights", "median", "--lovasz", 0.5, "--threads", 1, "--no-progress", cwd=tmp_path)

    # ---- the run directory
    for name in ("config.json", "log.csv", "state.json", "best.weights.h5", "last.weights.h5", "best_metrics.json"):
        assert (run / name).is_file(), name
    doc = json.loads((run / "config.json").read_text())
    given = {"data": str(data), "out": str(run), "arch": "unet", "base": 4, "depth": 3, "input_size": [32, 48],
             "epochs": epochs, "batch_size": 4, "lr": 3e-3, "seed": 7, "flip_p": 0.25, "class_weights": "median",
             "lovasz_weight": 0.5,
             "threads": 1, "progress": False, "num_classes": 4}
    assert {k: doc["train"][k] for k in given} == given
    assert [doc["classes"]["classes"][str(i)]["name"] for i in range(4)] == LABELS
    assert doc["native_size"] == list(SIZE) and len(doc["class_weights"]) == 4
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(epochs))
    assert all(np.isfinite(float(r["train_loss"])) and 0 <= float(r["val_miou"]) <= 1 for r in rows)
    best = json.loads((run / "best_metrics.json").read_text())
    assert best["epoch"] == int(np.argmax([float(r["val_miou"]) for r in rows]))

    # ---- float32 export: the .tflite against the Keras model of the run's config + best weights
    f32 = tmp_path / "out" / "f32.tflite"
    _cli("export", run, "-o", f32, "--quant", "float32", cwd=tmp_path)
    from mtkseg.train.loop import load_run_config, model_from_config

    cfg, _ = load_run_config(run)
    model = model_from_config(cfg, 4)
    model.load_weights(run / "best.weights.h5")
    train_images, train_masks = _load_split(data, "train")
    val_images, _ = _load_split(data, "val")
    rng = np.random.default_rng(3)
    probes = np.concatenate([train_images[:3], val_images[:1], rng.integers(0, 256, (2, *SIZE, 3), dtype=np.uint8)])
    keras_logits = model(probes.astype(np.float32) / 255.0, training=False).numpy()
    interp = _interpreter(f32)
    assert interp.get_input_details()[0]["shape"].tolist() == [1, *SIZE, 3]
    f32_logits = np.stack([_tflite_logits(interp, p) for p in probes])
    err = float(np.abs(f32_logits - keras_logits).max())
    print(f"float32 max |tflite - keras| = {err:.3g} (logit range {np.ptp(keras_logits):.3g})")
    assert err < FLOAT32_ATOL
    swapped = np.stack([_tflite_logits(interp, p[..., ::-1]) for p in probes])  # a planted BGR/RGB bug
    print(f"float32 with swapped channels: max diff {np.abs(swapped - keras_logits).max():.3g}")
    assert np.abs(swapped - keras_logits).max() > 100 * FLOAT32_ATOL

    # ---- int8 export with uint8 I/O, calibrated on the synthetic data
    q8 = tmp_path / "out" / "q8.tflite"
    _cli("export", run, "-o", q8, "--quant", "int8", "--calib", data, "--calib-count", 8, "--io-type", "uint8",
         cwd=tmp_path)
    interp8 = _interpreter(q8)
    assert interp8.get_input_details()[0]["dtype"] == np.uint8 and interp8.get_output_details()[0]["dtype"] == np.uint8
    images = np.concatenate([train_images, val_images])
    keras_arg = model(images.astype(np.float32) / 255.0, training=False).numpy().argmax(-1)
    q8_arg = np.stack([_tflite_logits(interp8, im).argmax(-1) for im in images])
    agreement = float(np.mean(q8_arg == keras_arg))
    print(f"int8 argmax agreement with keras = {agreement:.4f}")
    assert agreement >= INT8_AGREEMENT
    swapped = np.stack([_tflite_logits(interp8, im[..., ::-1]).argmax(-1) for im in images])
    print(f"int8 with swapped channels: agreement {np.mean(swapped == keras_arg):.4f}")
    assert np.mean(swapped == keras_arg) < agreement - 0.05

    # ---- labels: TFLite metadata (the appended zip) and the sidecar JSON
    for path, quant, io_type in ((f32, "float32", "float32"), (q8, "int8", "uint8")):
        with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as zf:
            assert zf.read("labels.txt").decode().split() == LABELS, path
        side = json.loads(path.with_suffix(".json").read_text())
        assert side["labels"] == LABELS and side["input_size"] == list(SIZE)
        assert side["quantization"] == quant and side["io_type"] == io_type
        assert side["palette"][1:] == COLOURS[1:].tolist()

    # ---- refusing to overwrite, then overwriting
    before, side_before = q8.read_bytes(), q8.with_suffix(".json").read_bytes()
    proc = _cli("export", run, "-o", q8, "--quant", "float32", cwd=tmp_path, expect=2)
    assert "--overwrite" in proc.stderr
    assert q8.read_bytes() == before and q8.with_suffix(".json").read_bytes() == side_before
    _cli("export", run, "-o", q8, "--quant", "float32", "--overwrite", cwd=tmp_path)
    assert q8.read_bytes() != before
    assert _interpreter(q8).get_input_details()[0]["dtype"] == np.float32  # the float32 model replaced it
    assert json.loads(q8.with_suffix(".json").read_text())["quantization"] == "float32"


def test_tiny_unet_learns_the_synthetic_train_set(tmp_path):
    from mtkseg.train.loop import TrainConfig, model_from_config, train

    data = _synthetic_dataset(tmp_path / "data", n_train=8, n_val=2, seed=1)
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "run"), arch="unet", base=4, depth=3, input_size=SIZE,
                      epochs=30, batch_size=4, lr=3e-3, schedule="constant", seed=0, threads=2, progress=False)
    res = train(cfg, log=lambda s: None)
    losses = [row["train_loss"] for row in res.history]
    model = model_from_config(cfg, 4)
    model.load_weights(tmp_path / "run" / "last.weights.h5")
    images, masks = _load_split(data, "train")
    pred = model(images.astype(np.float32) / 255.0, training=False).numpy().argmax(-1)
    miou = _numpy_miou(masks, pred)
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}; train-set mIoU {miou:.3f}")
    assert losses[-1] < 0.5 * losses[0], losses
    assert miou >= LEARN_MIOU
