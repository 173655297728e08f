"""Tests of mtkseg.data (numpy + OpenCV only; must not need TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mtkseg.data import (
    SegmentationDataset,
    class_pixel_counts,
    load_classes,
    median_frequency_weights,
    read_mask,
    resize_image,
    resize_mask,
)
from mtkseg.errors import DataError, InvalidArgumentError

NAMES = ["sky", "road", "car"]
COLORS = [[128, 128, 128], [128, 64, 128], [64, 0, 128]]


def write_dataset(root: Path, splits=("train",), n=3, size=(12, 16), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    classes = {"num_classes": 3, "ignore_index": 255,
               "classes": {str(i): {"name": n_, "color": c} for i, (n_, c) in enumerate(zip(NAMES, COLORS))}}
    classes["classes"]["255"] = {"name": "void", "color": [0, 0, 0]}
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.json").write_text(json.dumps(classes))
    for split in splits:
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        for i in range(n):
            mask = rng.integers(0, 3, size, dtype=np.uint8)
            mask[0, 0] = 255
            rgb = np.array(COLORS, np.uint8)[np.minimum(mask, 2)]
            cv2.imwrite(str(root / "images" / split / f"f{i:02d}.png"), rgb[..., ::-1])
            cv2.imwrite(str(root / "masks" / split / f"f{i:02d}.png"), mask)
    return root


def test_dataset_reads_pairs_in_rgb_order(tmp_path):
    root = write_dataset(tmp_path / "ds")
    ds = SegmentationDataset(root, "train")
    assert len(ds) == 3 and ds.names == ["f00", "f01", "f02"]
    assert ds.classes.names == NAMES and ds.classes.palette == [tuple(c) for c in COLORS]
    img, mask = ds[1]
    assert img.dtype == np.uint8 and img.shape == (12, 16, 3) and mask.shape == (12, 16)
    # the image was written from the palette: pixel colour must match the label (RGB order)
    labelled = mask != 255
    np.testing.assert_array_equal(img[labelled], np.array(COLORS, np.uint8)[mask[labelled]])
    images, masks = ds.load_all()
    assert images.shape == (3, 12, 16, 3) and masks.shape == (3, 12, 16)
    images, masks = ds.load_all(size=(6, 8), limit=2)
    assert images.shape == (2, 6, 8, 3) and set(np.unique(masks)) <= {0, 1, 2, 255}


def test_missing_mask_and_bad_labels_raise(tmp_path):
    root = write_dataset(tmp_path / "ds")
    (root / "masks" / "train" / "f01.png").unlink()
    with pytest.raises(DataError, match="no mask"):
        SegmentationDataset(root, "train")
    assert len(SegmentationDataset(root, "train", require_masks=False)) == 3

    root2 = write_dataset(tmp_path / "ds2")
    cv2.imwrite(str(root2 / "masks" / "train" / "f00.png"), np.full((12, 16), 7, np.uint8))
    with pytest.raises(DataError, match="outside"):
        SegmentationDataset(root2, "train")[0]
    cv2.imwrite(str(root2 / "masks" / "train" / "f00.png"), np.zeros((5, 5), np.uint8))
    with pytest.raises(DataError, match="same size"):
        SegmentationDataset(root2, "train")[0]
    with pytest.raises(DataError, match="split 'val' not found"):
        SegmentationDataset(root2, "val")
    with pytest.raises(DataError, match="classes.json"):
        load_classes(tmp_path)


def test_resize_mask_is_nearest():
    rng = np.random.default_rng(1)
    mask = rng.choice(np.array([0, 3, 9, 255], np.uint8), size=(7, 5))
    up = resize_mask(mask, (14, 10))
    # independent reference: exact 2x upscaling by nearest = pixel repetition
    np.testing.assert_array_equal(up, np.repeat(np.repeat(mask, 2, 0), 2, 1))
    down = resize_mask(rng.choice(np.array([0, 3, 255], np.uint8), size=(37, 53)), (11, 13))
    assert set(np.unique(down)) <= {0, 3, 255}  # no blended labels such as 1 or 129
    with pytest.raises(InvalidArgumentError):
        resize_mask(mask, (0, 4))
    with pytest.raises(InvalidArgumentError):
        resize_mask(np.zeros((4, 4, 3), np.uint8), (2, 2))


def test_resize_image_is_bilinear():
    ramp = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1))  # 4 x 16 horizontal ramp
    img = np.dstack([ramp] * 3)
    out = resize_image(img, (4, 31))
    # bilinear interpolation of a linear ramp stays (nearly) linear: interior steps ~ 8
    steps = np.diff(out[0, 2:-2, 0].astype(int))
    assert out.shape == (4, 31, 3) and np.all(np.abs(steps - 8) <= 1)


def test_read_mask_accepts_identical_channels(tmp_path):
    m = np.array([[0, 1], [2, 255]], np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), np.dstack([m] * 3))
    np.testing.assert_array_equal(read_mask(tmp_path / "a.png"), m)
    cv2.imwrite(str(tmp_path / "b.png"), np.dstack([m, m, m + 1]))
    with pytest.raises(DataError, match="single-channel"):
        read_mask(tmp_path / "b.png")


def test_class_counts_and_median_frequency_ignore_void():
    a = np.array([[0, 0, 0, 1]], np.uint8)          # 4 px: class0 x3, class1 x1
    b = np.array([[0, 2, 255, 255]], np.uint8)      # 2 labelled px: class0 x1, class2 x1
    masks = np.stack([a, b])
    np.testing.assert_array_equal(class_pixel_counts(masks, 3), [4, 1, 1])
    # freq(c) = count(c) / labelled pixels of images containing c
    freq = np.array([4 / 6, 1 / 4, 1 / 2])
    expected = np.median(freq) / freq
    np.testing.assert_allclose(median_frequency_weights(masks, 3), expected, rtol=1e-6)
    w = median_frequency_weights(masks, 4)  # class 3 never present -> weight 0
    assert w[3] == 0
    with pytest.raises(InvalidArgumentError):
        class_pixel_counts(masks, 2)


def test_data_eval_and_cli_modules_do_not_import_tensorflow():
    code = (
        "import sys, mtkseg.data, mtkseg.evaluate, mtkseg.train.sidecar\n"
        "from mtkseg.cli import eval, compare, train, export\n"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
