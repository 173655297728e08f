"""Evaluate and compare ``.tflite`` segmentation models on a labelled split (no TensorFlow).

Every image of the split goes through :class:`mtkseg.segmenter.Segmenter` exactly as an
application would feed it (BGR uint8 frame in, mask at the frame's size out), so the scores
are at the native mask resolution and include the model's own pre/post-processing.  Scores
come from one dataset-level confusion matrix (:class:`mtkseg.metrics.ConfusionMatrix`).
"""

from __future__ import annotations

import heapq
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from . import _io, ops
from .data import SegmentationDataset
from .errors import DataError, InvalidArgumentError, InvalidTypeError
from .metrics import ConfusionMatrix, SegmentationMetrics
from .options import SegmenterOptions

__all__ = ["EvalReport", "CompareReport", "evaluate_model", "compare_models", "draw_iou_bars", "side_by_side"]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class EvalReport:
    """Result of :func:`evaluate_model`."""

    model: str
    data: str
    split: str
    num_images: int
    seconds: float
    metrics: SegmentationMetrics

    @property
    def ms_per_image(self) -> float:
        return 1000.0 * self.seconds / max(self.num_images, 1)

    def to_dict(self) -> dict:
        return {"model": self.model, "data": self.data, "split": self.split, "num_images": self.num_images,
                "seconds": round(self.seconds, 3), "ms_per_image": round(self.ms_per_image, 2),
                **self.metrics.to_dict()}


@dataclass
class CompareReport:
    """Result of :func:`compare_models`."""

    model_a: str
    model_b: str
    split: str
    num_images: int
    metrics_a: SegmentationMetrics
    metrics_b: SegmentationMetrics
    agreement: float  # share of all pixels where A and B predict the same class
    per_image_agreement: List[float] = field(default_factory=list)
    examples: List[Path] = field(default_factory=list)

    @property
    def iou_delta(self) -> np.ndarray:
        """Per-class IoU of B minus A."""
        return self.metrics_b.iou - self.metrics_a.iou

    def format_table(self) -> str:
        names = self.metrics_a.class_names
        width = max([len(n) for n in names] + [9])
        lines = [f"{'class':<{width}}  {'IoU A':>6}  {'IoU B':>6}  {'B-A':>6}"]
        for n, a, b in zip(names, self.metrics_a.iou, self.metrics_b.iou):
            lines.append(f"{n:<{width}}  {_pct(a)}  {_pct(b)}  {_pct(b - a, signed=True)}")
        lines.append(f"{'mIoU':<{width}}  {_pct(self.metrics_a.miou)}  {_pct(self.metrics_b.miou)}  "
                     f"{_pct(self.metrics_b.miou - self.metrics_a.miou, signed=True)}")
        lines.append(f"{'pixel acc':<{width}}  {_pct(self.metrics_a.pixel_accuracy)}  "
                     f"{_pct(self.metrics_b.pixel_accuracy)}  "
                     f"{_pct(self.metrics_b.pixel_accuracy - self.metrics_a.pixel_accuracy, signed=True)}")
        lines.append(f"pixel agreement A vs B: {100 * self.agreement:.2f}%")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        delta = {n: (None if np.isnan(d) else float(d)) for n, d in zip(self.metrics_a.class_names, self.iou_delta)}
        return {"model_a": self.model_a, "model_b": self.model_b, "split": self.split,
                "num_images": self.num_images, "pixel_agreement": self.agreement, "iou_delta": delta,
                "miou_delta": float(self.metrics_b.miou - self.metrics_a.miou),
                "a": self.metrics_a.to_dict(), "b": self.metrics_b.to_dict(),
                "examples": [str(p) for p in self.examples]}


def _pct(v: float, signed: bool = False) -> str:
    if v is None or np.isnan(v):
        return "   n/a"
    return f"{100 * v:+6.1f}" if signed else f"{100 * v:6.1f}"


def _factory(segmenter_factory: Optional[Callable[[PathLike, int], object]],
             options: Optional[SegmenterOptions]) -> Callable[[PathLike, int], object]:
    """``segmenter_factory``, or one that opens a Segmenter from ``options`` (``model`` and,
    unless ``options`` sets it, ``num_threads`` filled in)."""
    if segmenter_factory is not None:
        if options is not None:
            raise InvalidArgumentError("options: give either options or segmenter_factory, not both")
        return segmenter_factory
    if options is not None and not isinstance(options, SegmenterOptions):
        raise InvalidTypeError(f"options: expected a mtkseg.SegmenterOptions, got {type(options).__name__}")
    base = options or SegmenterOptions()

    def open_segmenter(model: PathLike, num_threads: int) -> object:
        from .segmenter import Segmenter

        threads = base.num_threads if base.num_threads is not None else num_threads
        return Segmenter(options=base.replace(model=os.fspath(model), num_threads=threads))

    return open_segmenter


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


def _dataset(data: PathLike, split: str, limit: Optional[int]) -> Tuple[SegmentationDataset, int]:
    ds = SegmentationDataset(data, split)
    n = len(ds) if limit is None else min(int(limit), len(ds))
    if n < 1:
        raise InvalidArgumentError(f"limit: expected >= 1, got {limit}")
    return ds, n


def _check_mask(mask: np.ndarray, gt: np.ndarray, num_classes: int, model: PathLike) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != gt.shape:
        raise DataError(f"{model}: predicted mask {mask.shape} does not match the ground truth {gt.shape}")
    return mask


def evaluate_model(
    model: PathLike,
    data: PathLike,
    split: str = "test",
    num_threads: int = 2,
    limit: Optional[int] = None,
    progress: bool = True,
    segmenter_factory: Optional[Callable[[PathLike, int], object]] = None,
    options: Optional[SegmenterOptions] = None,
) -> EvalReport:
    """Stream ``data/images/split`` through the model and score it against ``data/masks/split``.

    Args:
        model: ``.tflite`` path (its sidecar JSON, if any, is used by the Segmenter).
        data: dataset folder (see :mod:`mtkseg.data`).
        limit: evaluate only the first N images.
        segmenter_factory: ``f(model, num_threads)`` returning an object with ``run(frame_bgr)``;
            defaults to a :class:`mtkseg.Segmenter` built from ``options``.
        options: the :class:`~mtkseg.SegmenterOptions` of the Segmenter (``model`` is replaced
            by ``model``; ``num_threads`` used when the options leave it None).
    """
    ds, n = _dataset(data, split, limit)
    seg = _factory(segmenter_factory, options)(model, num_threads)
    cm = ConfusionMatrix(ds.num_classes, ds.classes.ignore_index, ds.classes.names)
    t_run = 0.0
    with _progress(n, f"eval {Path(model).name}", progress) as bar:
        for i in range(n):
            image, gt = ds[i]
            frame = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            t0 = time.perf_counter()
            result = seg.run(frame)
            t_run += time.perf_counter() - t0
            cm.update(gt, _check_mask(result.mask, gt, ds.num_classes, model))
            bar.update(1)
    return EvalReport(os.fspath(model), os.fspath(data), split, n, t_run, cm.results())


def compare_models(
    model_a: PathLike,
    model_b: PathLike,
    data: PathLike,
    split: str = "test",
    num_threads: int = 2,
    limit: Optional[int] = None,
    out_dir: Optional[PathLike] = None,
    num_examples: int = 4,
    progress: bool = True,
    segmenter_factory: Optional[Callable[[PathLike, int], object]] = None,
    overwrite: bool = True,
    options: Optional[SegmenterOptions] = None,
) -> CompareReport:
    """Score two models on the same split, measure their pixel agreement and (with ``out_dir``)
    write side-by-side PNGs of the ``num_examples`` images where they differ most (atomically;
    ``overwrite=False`` refuses existing files, see :mod:`mtkseg._io`)."""
    ds, n = _dataset(data, split, limit)
    factory = _factory(segmenter_factory, options)
    seg_a, seg_b = factory(model_a, num_threads), factory(model_b, num_threads)
    cm_a = ConfusionMatrix(ds.num_classes, ds.classes.ignore_index, ds.classes.names)
    cm_b = ConfusionMatrix(ds.num_classes, ds.classes.ignore_index, ds.classes.names)
    same = total = 0
    per_image: List[float] = []
    worst: List[Tuple[float, int, np.ndarray, np.ndarray]] = []  # min-heap of the most different
    with _progress(n, "compare", progress) as bar:
        for i in range(n):
            image, gt = ds[i]
            frame = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            ma = _check_mask(seg_a.run(frame).mask, gt, ds.num_classes, model_a)
            mb = _check_mask(seg_b.run(frame).mask, gt, ds.num_classes, model_b)
            cm_a.update(gt, ma)
            cm_b.update(gt, mb)
            eq = int(np.count_nonzero(ma == mb))
            same += eq
            total += ma.size
            agree = eq / ma.size
            per_image.append(agree)
            if out_dir is not None and num_examples > 0:
                item = (-agree, i, ma.copy(), mb.copy())
                if len(worst) < num_examples:
                    heapq.heappush(worst, item)
                elif item[0] > worst[0][0]:
                    heapq.heapreplace(worst, item)
            bar.update(1)
    examples: List[Path] = []
    if out_dir is not None:
        out = _io.ensure_dir(out_dir, what="out_dir")
        palette = np.asarray(ds.classes.palette, np.uint8)
        for neg_agree, i, ma, mb in sorted(worst, key=lambda t: t[0], reverse=True):
            image, gt = ds[i]
            panel = side_by_side(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), gt, ma, mb, palette,
                                 titles=("image", "ground truth", Path(model_a).name, Path(model_b).name,
                                         f"A != B ({100 * (1 + neg_agree):.1f}%)"))
            path = out / f"diff_{ds.names[i]}.png"
            _io.write_image(path, panel, overwrite=overwrite, inputs=(model_a, model_b), what="out_dir")
            examples.append(path)
    return CompareReport(os.fspath(model_a), os.fspath(model_b), split, n, cm_a.results(), cm_b.results(),
                         same / max(total, 1), per_image, examples)


def _colorize_rgb_palette(mask: np.ndarray, palette_rgb: np.ndarray) -> np.ndarray:
    """BGR colour image of ``mask`` (classes beyond the palette black): the native colorize."""
    from .palettes import palette_for

    return ops.colorize(mask, palette_for(palette_rgb, "bgr"))


def side_by_side(
    frame_bgr: np.ndarray,
    gt: np.ndarray,
    mask_a: np.ndarray,
    mask_b: np.ndarray,
    palette_rgb: np.ndarray,
    titles: Sequence[str] = ("image", "ground truth", "A", "B", "A != B"),
) -> np.ndarray:
    """One BGR row: frame | gt | A | B | where A and B differ (white), each with a title bar."""
    diff = np.where((mask_a != mask_b)[..., None], 255, 0).astype(np.uint8).repeat(3, axis=2)
    tiles = [frame_bgr, _colorize_rgb_palette(gt, palette_rgb), _colorize_rgb_palette(mask_a, palette_rgb),
             _colorize_rgb_palette(mask_b, palette_rgb), diff]
    out = []
    for tile, title in zip(tiles, titles):
        bar = np.full((22, tile.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, str(title)[:40], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        out.append(np.vstack([bar, tile]))
    return np.hstack(out)


def draw_iou_bars(
    metrics: SegmentationMetrics,
    path: PathLike,
    title: str = "",
    palette_rgb: Optional[Sequence[Sequence[int]]] = None,
    compare_to: Optional[SegmentationMetrics] = None,
    *,
    overwrite: bool = True,
) -> Path:
    """Per-class IoU bar chart drawn with OpenCV (no matplotlib needed); PNG at ``path``.

    With ``compare_to`` a second, thin grey bar per class shows the other model's IoU.  The
    file is written atomically; ``overwrite=False`` refuses an existing one.
    """
    names = metrics.class_names
    n = len(names)
    row, left, right, top = 24, 150, 90, 40
    width, height = left + 400 + right, top + row * (n + 2) + 26
    img = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(img, title[:70] or "per-class IoU", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    for x in range(0, 101, 20):  # grid at 0, 20, ..., 100 %
        gx = left + 4 * x
        cv2.line(img, (gx, top - 4), (gx, top + row * (n + 1)), (220, 220, 220), 1)
        cv2.putText(img, f"{x}", (gx - 8, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
    pal = np.asarray(palette_rgb, np.uint8) if palette_rgb is not None else None
    values = list(metrics.iou) + [metrics.miou]
    labels = list(names) + ["mIoU"]
    others = (list(compare_to.iou) + [compare_to.miou]) if compare_to is not None else None
    for i, (name, v) in enumerate(zip(labels, values)):
        y = top + i * row + (row if i == n else 0)
        cv2.putText(img, name[:18], (8, y + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        if np.isnan(v):
            cv2.putText(img, "n/a", (left + 4, y + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
            continue
        color = (60, 60, 60) if (pal is None or i >= n) else tuple(int(c) for c in pal[i][::-1])
        cv2.rectangle(img, (left, y + 3), (left + int(round(400 * v)), y + row - 5), color, -1)
        cv2.rectangle(img, (left, y + 3), (left + int(round(400 * v)), y + row - 5), (0, 0, 0), 1)
        if others is not None and not np.isnan(others[i]):
            ox = left + int(round(400 * others[i]))
            cv2.line(img, (ox, y + 1), (ox, y + row - 3), (0, 0, 255), 2)
        cv2.putText(img, f"{100 * v:.1f}", (left + 406, y + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    out = Path(path)
    _io.ensure_dir(out.parent, what="chart")
    try:
        ok, buf = cv2.imencode(out.suffix or ".png", img)
    except cv2.error:
        ok = False
    if not ok:
        raise InvalidArgumentError(f"{out}: cannot write the bar chart (use a .png path)")
    return _io.write_bytes(out, buf.tobytes(), overwrite=overwrite, what="chart")


def write_json(obj: dict, path: PathLike, *, overwrite: bool = True, inputs: Sequence[PathLike] = ()) -> Path:
    """Write a report dictionary as indented JSON, atomically (``overwrite=False`` refuses an
    existing file; none of ``inputs`` is ever overwritten)."""
    out = Path(path)
    _io.ensure_dir(out.parent, what="json")
    return _io.write_text(out, json.dumps(obj, indent=1) + "\n", overwrite=overwrite, inputs=inputs, what="json")
