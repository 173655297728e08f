"""Colourised masks, overlays and legends (the palettes themselves live in
:mod:`mtkseg.palettes`, re-exported here).

Palettes are stored RGB (as datasets publish them); functions taking a ``color`` argument
convert to the frame's order, which defaults to OpenCV's BGR.  Every colour image is made by
the native ``colorize``/``overlay`` kernels (:func:`mtkseg.ops.colorize`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from . import ops
from .errors import InvalidArgumentError
from .palettes import CAMVID_CLASSES, CAMVID_PALETTE, LANE_CLASSES, LANE_PALETTE, default_palette, palette_for

__all__ = [
    "LANE_CLASSES",
    "LANE_PALETTE",
    "CAMVID_CLASSES",
    "CAMVID_PALETTE",
    "default_palette",
    "palette_for",
    "colorize",
    "overlay",
    "legend",
    "draw_legend",
]

def colorize(mask: np.ndarray, palette: Optional[object] = None, *, color: str = "bgr") -> np.ndarray:
    """Colour image of a class mask (``color`` order); unknown classes are black."""
    if palette is None:
        palette = default_palette(max(1, int(np.max(mask)) + 1 if np.size(mask) else 1) if np.max(mask, initial=0) < 255 else 256)
    return ops.colorize(mask, palette_for(palette, color))


def overlay(
    frame: np.ndarray,
    mask: np.ndarray,
    palette: Optional[object] = None,
    alpha: float = 0.5,
    *,
    color: str = "bgr",
    inplace: bool = False,
) -> np.ndarray:
    """Blend the coloured mask onto ``frame`` (``HxWx3`` uint8 in ``color`` order)."""
    if palette is None:
        palette = default_palette(max(1, int(np.max(mask, initial=0)) + 1) if np.max(mask, initial=0) < 255 else 256)
    return ops.overlay(frame, mask, palette_for(palette, color), alpha, inplace=inplace)


def legend(class_names: Sequence[str], palette: object, *, color: str = "bgr", row_height: int = 22) -> np.ndarray:
    """A small image listing each class name beside its colour swatch."""
    pal = palette_for(palette, color)
    if len(class_names) != len(pal):
        raise InvalidArgumentError(f"class_names: {len(class_names)} names for {len(pal)} palette colours")
    if row_height < 10:
        raise InvalidArgumentError(f"row_height: expected >= 10, got {row_height}")
    width = 40 + 9 * max((len(n) for n in class_names), default=1)
    img = np.full((row_height * len(class_names) + 4, width, 3), 255, dtype=np.uint8)
    for i, (name, col) in enumerate(zip(class_names, pal)):
        y = 2 + i * row_height
        cv2.rectangle(img, (4, y + 2), (4 + row_height - 6, y + row_height - 4), tuple(int(c) for c in col), -1)
        cv2.rectangle(img, (4, y + 2), (4 + row_height - 6, y + row_height - 4), (0, 0, 0), 1)
        cv2.putText(img, name, (row_height + 6, y + row_height - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return img


#: Above this many classes, :func:`draw_legend` lists only the classes present in the mask.
LEGEND_MAX_ROWS = 24


def draw_legend(
    image: np.ndarray,
    class_names: Sequence[str],
    palette: object,
    *,
    color: str = "bgr",
    mask: Optional[np.ndarray] = None,
    margin: int = 8,
) -> np.ndarray:
    """A copy of ``image`` with a :func:`legend` of the classes pasted in its top-left corner.

    All classes are listed when there are at most :data:`LEGEND_MAX_ROWS`; otherwise only those
    present in ``mask`` (required then).  The legend is scaled down to fit small images.

    Raises:
        InvalidArgumentError: ``image`` is not ``HxWx3`` uint8, the names and palette differ in
            length, or too many classes and no ``mask`` to pick the present ones.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidArgumentError(f"image: expected an HxWx3 uint8 image, got {getattr(image, 'dtype', type(image))} "
                                   f"{getattr(image, 'shape', '')}")
    pal = np.asarray(palette)
    names = list(class_names)
    if len(names) != len(pal):
        raise InvalidArgumentError(f"class_names: {len(names)} names for {len(pal)} palette colours")
    keep = list(range(len(names)))
    if len(names) > LEGEND_MAX_ROWS:
        if mask is None:
            raise InvalidArgumentError(f"mask: needed to pick the classes present: {len(names)} classes are too many "
                                       f"for one legend (more than {LEGEND_MAX_ROWS})")
        present = np.flatnonzero(np.bincount(np.asarray(mask).ravel(), minlength=256)[: len(names)])
        keep = [int(i) for i in present[:LEGEND_MAX_ROWS]] or [0]
    box = legend([names[i] for i in keep], pal[keep], color=color)
    out = image.copy()
    room_h, room_w = out.shape[0] - 2 * margin, out.shape[1] - 2 * margin
    if room_h < 8 or room_w < 8:
        return out  # nowhere to draw: the image is tiny
    scale = min(1.0, room_h / box.shape[0], room_w / box.shape[1])
    if scale < 1.0:
        box = cv2.resize(box, (max(1, int(box.shape[1] * scale)), max(1, int(box.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    h, w = box.shape[:2]
    out[margin : margin + h, margin : margin + w] = box
    return out
