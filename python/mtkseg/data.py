"""Segmentation datasets stored as image/mask folder pairs (numpy + OpenCV only).

Layout (the one of the CamVid copy in ``shared/data/camvid``)::

    ROOT/classes.json                 {"num_classes": N, "ignore_index": 255,
                                       "classes": {"0": {"name": ..., "color": [r, g, b]}, ...}}
    ROOT/images/{split}/NAME.png|jpg  RGB images
    ROOT/masks/{split}/NAME.png       single-channel class-index masks (ignore_index = void)

This module never imports TensorFlow: evaluation uses it without the ``train`` extra.
Images are returned RGB ``uint8`` (H, W, 3); masks ``uint8`` (H, W).  Resizing images is
bilinear, resizing masks is always nearest-neighbour (a label map must never be blended).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from . import _validate as _v
from .errors import DataError, InvalidArgumentError

__all__ = [
    "ClassInfo",
    "SegmentationDataset",
    "load_classes",
    "read_image",
    "read_mask",
    "resize_image",
    "resize_mask",
    "class_pixel_counts",
    "median_frequency_weights",
    "IMAGE_EXTENSIONS",
]

PathLike = Union[str, "os.PathLike[str]"]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class ClassInfo:
    """Class names, RGB palette and ignore label of a dataset."""

    names: List[str]
    palette: List[Tuple[int, int, int]]
    ignore_index: int = 255

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict:
        """The ``classes.json`` representation."""
        return {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "classes": {
                str(i): {"name": n, "color": list(c)} for i, (n, c) in enumerate(zip(self.names, self.palette))
            },
        }


def load_classes(root: PathLike) -> ClassInfo:
    """Read ``ROOT/classes.json`` (see the module docstring for the format)."""
    path = Path(root) / "classes.json"
    if not path.is_file():
        raise DataError(f"{path}: classes.json not found; a dataset folder needs it (see mtkseg.data docs)")
    try:
        doc = json.loads(path.read_text())
        ignore = int(doc.get("ignore_index", 255))
        classes = doc["classes"]
        ids = sorted(int(k) for k in classes if int(k) != ignore)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: malformed classes.json ({exc}); expected keys 'classes' and 'ignore_index'") from exc
    num = int(doc.get("num_classes", len(ids)))
    if ids != list(range(num)):
        raise DataError(f"{path}: class ids must be 0..{num - 1} (plus the ignore index), got {ids}")
    names = [str(classes[str(i)]["name"]) for i in ids]
    palette = [tuple(int(v) for v in classes[str(i)].get("color", (0, 0, 0)))[:3] for i in ids]
    return ClassInfo(names=names, palette=palette, ignore_index=ignore)  # type: ignore[arg-type]


def read_image(path: PathLike) -> np.ndarray:
    """Decode an image file to RGB ``uint8`` (H, W, 3)."""
    img = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{path}: cannot decode image (missing or not an image file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_mask(path: PathLike) -> np.ndarray:
    """Decode a class-index mask PNG to ``uint8`` (H, W), values unchanged."""
    mask = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DataError(f"{path}: cannot decode mask (missing or not an image file)")
    if mask.ndim == 3:
        # A palette-free 3-channel PNG with identical channels is still a valid index mask.
        if not (np.array_equal(mask[..., 0], mask[..., 1]) and np.array_equal(mask[..., 0], mask[..., 2])):
            raise DataError(f"{path}: mask has 3 different channels; masks must be single-channel class indices")
        mask = mask[..., 0]
    if mask.dtype != np.uint8:
        raise DataError(f"{path}: mask dtype {mask.dtype}; expected 8-bit class indices")
    return np.ascontiguousarray(mask)


def _check_size(size: Sequence[int]) -> Tuple[int, int]:
    return _v.size(size, "size")


def resize_image(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Bilinear resize of an image to ``size = (height, width)``."""
    h, w = _check_size(size)
    if image.shape[:2] == (h, w):
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)


def resize_mask(mask: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour resize of a label mask to ``size = (height, width)`` (labels never mix)."""
    h, w = _check_size(size)
    if mask.ndim != 2:
        raise InvalidArgumentError(f"mask: expected a (H, W) label map, got shape {mask.shape}")
    if mask.shape == (h, w):
        return mask
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)


class SegmentationDataset:
    """One split of an image/mask folder dataset.

    Args:
        root: dataset folder (holds ``classes.json``, ``images/`` and ``masks/``).
        split: sub-folder name, e.g. ``"train"``, ``"val"`` or ``"test"``.
        require_masks: if False, images without masks are allowed (masks are then None).

    Indexing returns ``(image_rgb_uint8, mask_uint8)``.
    """

    def __init__(self, root: PathLike, split: str, require_masks: bool = True) -> None:
        self.root = Path(root)
        self.split = str(split)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset folder not found")
        self.classes = load_classes(self.root)
        image_dir = self.root / "images" / self.split
        mask_dir = self.root / "masks" / self.split
        if not image_dir.is_dir():
            splits = sorted(p.name for p in (self.root / "images").glob("*") if p.is_dir())
            raise DataError(f"{image_dir}: split '{self.split}' not found; available splits: {splits}")
        self.image_paths = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.image_paths:
            raise DataError(f"{image_dir}: no .png/.jpg images")
        self.mask_paths: List[Optional[Path]] = []
        missing = []
        for p in self.image_paths:
            m = mask_dir / (p.stem + ".png")
            if m.is_file():
                self.mask_paths.append(m)
            else:
                missing.append(m.name)
                self.mask_paths.append(None)
        if missing and require_masks:
            raise DataError(
                f"{mask_dir}: {len(missing)} of {len(self.image_paths)} images have no mask "
                f"(first: {missing[0]}); every image needs masks/{self.split}/NAME.png"
            )

    @property
    def names(self) -> List[str]:
        """File stems, in order."""
        return [p.stem for p in self.image_paths]

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        image = read_image(self.image_paths[index])
        mp = self.mask_paths[index]
        if mp is None:
            return image, None
        mask = read_mask(mp)
        if mask.shape != image.shape[:2]:
            raise DataError(
                f"{mp}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is "
                f"{image.shape[1]}x{image.shape[0]}; they must have the same size"
            )
        bad = (mask >= self.num_classes) & (mask != self.classes.ignore_index)
        if bad.any():
            raise DataError(
                f"{mp}: mask holds label(s) {sorted(set(np.unique(mask[bad]).tolist()))} outside "
                f"0..{self.num_classes - 1} and not the ignore index {self.classes.ignore_index}"
            )
        return image, mask

    def __iter__(self) -> Iterator[Tuple[np.ndarray, Optional[np.ndarray]]]:
        for i in range(len(self)):
            yield self[i]

    def load_all(
        self, size: Optional[Sequence[int]] = None, limit: Optional[int] = None
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Decode the split into memory: ``(images (N,H,W,3) uint8, masks (N,H,W) uint8)``.

        ``size=(h, w)`` resizes every sample (image bilinear, mask nearest); without it all
        samples must share one size.  ``limit`` keeps the first N samples.
        """
        n = len(self) if limit is None else max(0, min(int(limit), len(self)))
        if n == 0:
            raise DataError(f"{self.root}: nothing to load from split '{self.split}'")
        images, masks = [], []
        for i in range(n):
            img, mask = self[i]
            if mask is None:
                raise DataError(f"{self.image_paths[i]}: no mask; load_all needs masks")
            if size is not None:
                img, mask = resize_image(img, size), resize_mask(mask, size)
            elif images and img.shape != images[0].shape:
                raise DataError(
                    f"{self.image_paths[i]}: size {img.shape[:2]} differs from {images[0].shape[:2]}; "
                    "pass size=(h, w) to resize"
                )
            images.append(img)
            masks.append(mask)
        return np.stack(images), np.stack(masks)


def class_pixel_counts(masks: np.ndarray, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """Pixels per class over a stack of masks (``ignore_index`` not counted), int64 (C,)."""
    masks = np.asarray(masks)
    valid = masks[masks != ignore_index]
    if valid.size and int(valid.max()) >= num_classes:
        raise InvalidArgumentError(f"masks: label {int(valid.max())} >= num_classes {num_classes}")
    return np.bincount(valid.ravel(), minlength=num_classes).astype(np.int64)


def median_frequency_weights(masks: np.ndarray, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """Median-frequency class weights (Eigen & Fergus 2015), as used by SegNet.

    ``freq(c)`` = pixels of class c / total pixels of the images where c is present;
    ``weight(c) = median(freq) / freq(c)``.  Classes never present get weight 0.
    """
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3:
        raise InvalidArgumentError(f"masks: expected (N, H, W) label maps, got shape {masks.shape}")
    counts = np.zeros(num_classes, np.float64)
    present_total = np.zeros(num_classes, np.float64)
    for m in masks:
        c = class_pixel_counts(m, num_classes, ignore_index).astype(np.float64)
        counts += c
        present_total += np.where(c > 0, c.sum(), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        freq = np.where(present_total > 0, counts / np.where(present_total > 0, present_total, 1), 0.0)
    seen = freq > 0
    if not seen.any():
        raise InvalidArgumentError("masks: no labelled pixel; cannot compute class weights")
    median = np.median(freq[seen])
    return np.where(seen, median / np.where(seen, freq, 1), 0.0).astype(np.float32)
