"""Segmentation metrics from a dataset-level confusion matrix.

The semantics are those of mmsegmentation and the Cityscapes scripts: one confusion
matrix is accumulated over the whole dataset and every score is computed from it
(not a mean of per-image scores).  Rows are ground truth, columns are predictions
(scikit-learn's convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from . import ops
from . import _validate as _v
from .errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "SegmentationMetrics",
    "ConfusionMatrix",
    "per_class_iou",
    "mean_iou",
    "pixel_accuracy",
    "mean_class_accuracy",
    "frequency_weighted_iou",
    "metrics_from_matrix",
]


def _check_matrix(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise InvalidArgumentError(
            f"matrix: expected a square (C, C) confusion matrix, got shape {matrix.shape}"
        )
    if not np.issubdtype(matrix.dtype, np.integer):
        raise InvalidTypeError(f"matrix: expected an integer matrix of counts, got dtype {matrix.dtype}")
    return matrix.astype(np.float64)


def per_class_iou(matrix: np.ndarray) -> np.ndarray:
    """IoU of every class: TP / (TP + FP + FN); NaN where the class is absent from gt and pred."""
    m = _check_matrix(matrix)
    tp = np.diag(m)
    union = m.sum(axis=0) + m.sum(axis=1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def mean_iou(matrix: np.ndarray) -> float:
    """Mean of :func:`per_class_iou` ignoring NaN (classes seen in neither gt nor pred)."""
    iou = per_class_iou(matrix)
    return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")


def pixel_accuracy(matrix: np.ndarray) -> float:
    """Share of counted pixels whose predicted class is right; NaN for an empty matrix."""
    m = _check_matrix(matrix)
    total = m.sum()
    return float(np.trace(m) / total) if total > 0 else float("nan")


def mean_class_accuracy(matrix: np.ndarray) -> float:
    """Mean over classes present in the ground truth of per-class recall."""
    m = _check_matrix(matrix)
    gt_count = m.sum(axis=1)
    present = gt_count > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(m)[present] / gt_count[present]))


def frequency_weighted_iou(matrix: np.ndarray) -> float:
    """IoU of each class weighted by its share of ground-truth pixels."""
    m = _check_matrix(matrix)
    total = m.sum()
    if total == 0:
        return float("nan")
    freq = m.sum(axis=1) / total
    iou = per_class_iou(matrix)
    valid = freq > 0
    return float(np.sum(freq[valid] * np.nan_to_num(iou[valid])))


@dataclass(frozen=True)
class SegmentationMetrics:
    """Scores computed from one confusion matrix.

    Attributes:
        iou: per-class IoU (NaN for classes absent from both gt and prediction).
        miou: NaN-ignoring mean of ``iou``.
        pixel_accuracy: correctly classified share of counted pixels.
        mean_class_accuracy: mean per-class recall over classes present in gt.
        fwiou: frequency-weighted IoU.
        class_names: one name per class.
        matrix: the int64 confusion matrix (rows gt, columns prediction).
    """

    iou: np.ndarray
    miou: float
    pixel_accuracy: float
    mean_class_accuracy: float
    fwiou: float
    class_names: List[str]
    matrix: np.ndarray = field(repr=False)

    def per_class(self) -> Dict[str, float]:
        """``{class name: IoU}``."""
        return {name: float(v) for name, v in zip(self.class_names, self.iou)}

    def to_dict(self) -> dict:
        """JSON-ready dictionary (NaN becomes ``None``)."""

        def clean(v: float) -> Optional[float]:
            return None if np.isnan(v) else float(v)

        return {
            "miou": clean(self.miou),
            "pixel_accuracy": clean(self.pixel_accuracy),
            "mean_class_accuracy": clean(self.mean_class_accuracy),
            "fwiou": clean(self.fwiou),
            "iou": {name: clean(float(v)) for name, v in zip(self.class_names, self.iou)},
            "confusion_matrix": self.matrix.tolist(),
        }

    def format_table(self) -> str:
        """A human-readable per-class table."""
        width = max([len(n) for n in self.class_names] + [5])
        lines = [f"{'class':<{width}}  IoU"]
        for name, v in zip(self.class_names, self.iou):
            lines.append(f"{name:<{width}}  {'  n/a' if np.isnan(v) else f'{100 * v:5.1f}'}")
        lines.append(f"{'mIoU':<{width}}  {100 * self.miou:5.1f}")
        lines.append(f"{'pixel acc':<{width}}  {100 * self.pixel_accuracy:5.1f}")
        return "\n".join(lines)


def metrics_from_matrix(matrix: np.ndarray, class_names: Optional[Sequence[str]] = None) -> SegmentationMetrics:
    """Compute every score of :class:`SegmentationMetrics` from a confusion matrix."""
    m = np.asarray(matrix)
    _check_matrix(m)
    names = list(class_names) if class_names is not None else [f"class_{i}" for i in range(m.shape[0])]
    if len(names) != m.shape[0]:
        raise InvalidArgumentError(f"class_names: expected {m.shape[0]} names, got {len(names)}")
    return SegmentationMetrics(
        iou=per_class_iou(m),
        miou=mean_iou(m),
        pixel_accuracy=pixel_accuracy(m),
        mean_class_accuracy=mean_class_accuracy(m),
        fwiou=frequency_weighted_iou(m),
        class_names=names,
        matrix=m.astype(np.int64, copy=True),
    )


class ConfusionMatrix:
    """A streaming confusion matrix over a whole dataset.

    Example:
        >>> cm = ConfusionMatrix(num_classes=11)
        >>> for gt, pred in pairs:
        ...     cm.update(gt, pred)
        >>> cm.results().miou
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: Optional[int] = 255,
        class_names: Optional[Sequence[str]] = None,
    ) -> None:
        num_classes = _v.integer(num_classes, "num_classes", minimum=1, expected="a positive integer")
        if class_names is not None and len(class_names) != num_classes:
            raise InvalidArgumentError(f"class_names: expected {num_classes} names, got {len(class_names)}")
        ops.check_ignore_index(ignore_index)  # None: no ignore index, every label counts
        self.num_classes = int(num_classes)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.class_names = list(class_names) if class_names is not None else None
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, gt: np.ndarray, pred: np.ndarray) -> "ConfusionMatrix":
        """Add one image (or batch) of ground-truth and predicted labels of the same shape."""
        ops.confusion_matrix(gt, pred, self.num_classes, ignore_index=self.ignore_index, out=self.matrix)
        return self

    def reset(self) -> None:
        """Zero the counts."""
        self.matrix[...] = 0

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Return a new matrix holding the counts of both (e.g. from two workers)."""
        if not isinstance(other, ConfusionMatrix):
            raise InvalidTypeError(f"other: expected a ConfusionMatrix, got {type(other).__name__}")
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise InvalidArgumentError(
                "other: cannot merge confusion matrices with different num_classes/ignore_index "
                f"({self.num_classes}/{self.ignore_index} vs {other.num_classes}/{other.ignore_index})"
            )
        merged = ConfusionMatrix(self.num_classes, self.ignore_index, self.class_names)
        merged.matrix = self.matrix + other.matrix
        return merged

    def results(self) -> SegmentationMetrics:
        """All scores from the counts so far."""
        return metrics_from_matrix(self.matrix, self.class_names)
