"""``SegmentationResult``: what :meth:`mtkseg.Segmenter.run` returns.

Memory and copies
    ``mask`` is the only array a result always owns (``HxW`` uint8 at the frame's size).  For
    :meth:`SegmentationResult.confidence` the result refers to the model-resolution scores
    where they lie, in the interpreter's output buffer.  When the segmenter is about to
    overwrite that buffer (the next ``run()``, or ``close()``) and the result is still alive,
    the scores are copied into the result first: one copy of the model-resolution output
    (e.g. 192x320x11 int8 = 660 KiB, well under a millisecond).  Results that are dropped
    before the next frame cost no copy at all.  The input ``frame`` is kept by reference (no
    copy) for :meth:`overlay`.

Threads
    While its scores still lie in the interpreter's buffer, a result reads them under its
    Segmenter's lock, so ``confidence()`` in one thread and ``run()`` in another are
    serialised rather than racing (the copy above happens under the same lock).
"""

from __future__ import annotations

from pathlib import Path
from typing import ContextManager, Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from . import _io, ops
from . import _validate as _v
from .errors import FrameError, InvalidArgumentError, InvalidTypeError
from .ops import InputGeometry

__all__ = ["SegmentationResult"]

_LOSSLESS = (".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")


class SegmentationResult:
    """The segmentation of one frame.

    Attributes:
        mask: ``HxW`` uint8 class indices at the frame's size (or ``output_size``).
        class_names: one name per class.
        palette: ``(C, 3)`` uint8 RGB colours, one per class.
        timings: milliseconds spent in ``pre`` (resize/normalise into the model input),
            ``infer`` (the interpreter) and ``post`` (argmax/resize into ``mask``).
        frame: the input frame, by reference (for path inputs, the decoded image).
        color: channel order of ``frame`` and of the images this result draws
            (``"bgr"`` or ``"rgb"``; PIL inputs are ``"rgb"``).
    """

    def __init__(
        self,
        mask: np.ndarray,
        *,
        class_names: Sequence[str],
        palette: np.ndarray,
        timings: Dict[str, float],
        frame: Optional[np.ndarray] = None,
        color: str = "bgr",
        scores: Optional[np.ndarray] = None,
        scores_layout: str = "nhwc",
        scores_scale: float = 1.0,
        scores_zero_point: int = 0,
        output_kind: str = "logits",
        geometry: Optional[InputGeometry] = None,
    ):
        self.mask = mask
        self._class_names = tuple(class_names)
        self.palette = palette
        self.timings = timings
        self.frame = frame
        self.color = color
        self._scores = scores
        self._scores_layout = scores_layout
        self._scores_scale = float(scores_scale)
        self._scores_zero_point = int(scores_zero_point)
        self._kind = output_kind
        self._geometry = geometry
        self._guard: Optional[ContextManager[object]] = None  # the Segmenter's lock while scores are borrowed

    # ------------------------------------------------------------------ properties

    @property
    def shape(self) -> Tuple[int, int]:
        """``(height, width)`` of the mask."""
        return (int(self.mask.shape[0]), int(self.mask.shape[1]))

    @property
    def class_names(self) -> Tuple[str, ...]:
        """Class names; for class-index models without labels, ``class_0..class_<max>``."""
        if self._class_names:
            return self._class_names
        top = int(self.mask.max(initial=0)) if self.mask.size else 0
        return tuple(f"class_{i}" for i in range(top + 1))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_scores(self) -> bool:
        """True when :meth:`confidence` can be called (the model outputs scores)."""
        return self._scores is not None

    def _attach(self, guard: ContextManager[object]) -> None:
        """Mark the scores as borrowed from a Segmenter's buffer: read them under ``guard``."""
        self._guard = guard

    def _detach(self) -> None:
        """Copy the scores out of the runtime's buffer (called by the Segmenter, under its
        lock, before the buffer is overwritten)."""
        if self._scores is not None:
            self._scores = np.array(self._scores, copy=True)
        self._guard = None

    # ------------------------------------------------------------------ drawing

    def _frame3(self, frame: Optional[np.ndarray]) -> np.ndarray:
        if frame is None:
            frame = self.frame
            if frame is None:
                raise InvalidArgumentError("frame: this result keeps no frame; pass the frame to draw on")
        if not isinstance(frame, np.ndarray):
            raise InvalidTypeError(f"frame: expected a numpy array, got {type(frame).__name__}")
        if frame.dtype != np.uint8:
            raise FrameError(f"frame: expected uint8 pixels, got {frame.dtype}")
        if frame.shape[:2] != self.shape:
            raise FrameError(f"frame: its size {frame.shape[:2]} differs from the mask's {self.shape}")
        if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
            return cv2.cvtColor(np.ascontiguousarray(frame.reshape(self.shape)), cv2.COLOR_GRAY2BGR)
        if frame.ndim == 3 and frame.shape[2] == 4:
            return np.ascontiguousarray(frame[:, :, :3])
        if frame.ndim == 3 and frame.shape[2] == 3:
            return frame
        raise FrameError(f"frame: expected HxW, HxWx3 or HxWx4 uint8, got shape {frame.shape}")

    def _palette_for(self) -> np.ndarray:
        from .palettes import palette_for  # the one RGB -> frame-order conversion

        return palette_for(self.palette, self.color)

    def overlay(self, frame: Optional[np.ndarray] = None, alpha: float = 0.5, *, legend: bool = False) -> np.ndarray:
        """The class colours blended onto ``frame`` (default: the input frame) with weight
        ``alpha``; returned in the frame's channel order (:attr:`color`).  ``legend=True`` adds
        the class colours and names in the top-left corner (:func:`mtkseg.viz.draw_legend`)."""
        alpha = _v.number(alpha, "alpha", minimum=0.0, maximum=1.0, expected="a number in [0, 1]")
        image = ops.overlay(self._frame3(frame), self.mask, self._palette_for(), alpha)
        return self.add_legend(image) if legend else image

    def colorize(self, *, legend: bool = False) -> np.ndarray:
        """``HxWx3`` uint8 image of the class colours (in :attr:`color` order); ``legend=True``
        adds the class names as in :meth:`overlay`."""
        image = ops.colorize(self.mask, self._palette_for())
        return self.add_legend(image) if legend else image

    def add_legend(self, image: np.ndarray) -> np.ndarray:
        """A copy of ``image`` (in :attr:`color` order) with this result's class legend drawn on it."""
        from .viz import draw_legend

        names = self.class_names
        palette = np.asarray(self.palette, dtype=np.uint8)
        if len(palette) != len(names):  # class-index models without labels: default colours
            from .palettes import default_palette

            palette = default_palette(len(names))
        return draw_legend(image, names, palette, color=self.color, mask=self.mask)

    def to_dict(self) -> Dict[str, object]:
        """A JSON-ready summary: ``size`` ``[h, w]``, ``classes`` (names), ``class_fractions``
        (share of pixels per class, in class order), ``timings_ms`` and ``color``."""
        return {
            "size": list(self.shape),
            "classes": list(self.class_names),
            "class_fractions": self.class_fractions(),
            "timings_ms": {k: round(float(v), 3) for k, v in self.timings.items()},
            "color": self.color,
        }

    def class_fractions(self) -> Dict[str, float]:
        """Share of the mask's pixels per class name (classes absent from the mask get 0.0;
        pixels outside the known classes, e.g. 255, are not counted)."""
        names = self.class_names
        counts = np.bincount(self.mask.ravel(), minlength=256)
        total = float(self.mask.size) or 1.0
        return {name: float(counts[i]) / total for i, name in enumerate(names)}

    # ------------------------------------------------------------------ scores

    def _class_index(self, cls: Union[int, str, None]) -> Optional[int]:
        if cls is None:
            return None
        if isinstance(cls, str):
            names = self.class_names
            if cls not in names:
                raise InvalidArgumentError(f"class: unknown class name {cls!r}; known: {list(names)}")
            return names.index(cls)
        if not _v.is_int(cls):
            raise InvalidTypeError(f"class: expected a class index or name, got {type(cls).__name__}")
        if not 0 <= int(cls) < self.num_classes:
            raise InvalidArgumentError(f"class: index {cls} outside 0..{self.num_classes - 1}")
        return int(cls)

    def confidence(self, cls: Union[int, str, None] = None) -> np.ndarray:
        """Per-pixel probability of class ``cls`` (index or name) as float32 at the mask's
        size; with ``cls=None`` the probability of the winning class.  Logits go through a
        softmax (sigmoid for one-channel logit maps), quantised scores are dequantised.
        Scores are interpolated bilinearly.

        Raises:
            InvalidArgumentError: the model outputs class indices (no scores), or ``cls`` is
                not a known class.
        """
        if self._scores is None:
            raise InvalidArgumentError(
                "confidence: this model outputs class indices, not scores, so there is no per-class confidence"
            )
        index = self._class_index(cls)
        guard = self._guard
        if guard is None:
            return self._confidence(index)
        with guard:  # detached meanwhile or not, self._scores is valid while the lock is held
            return self._confidence(index)

    def _confidence(self, index: Optional[int]) -> np.ndarray:
        if self._kind in ("binary_probability", "binary_logit"):
            return self._binary_confidence(index)
        return ops.confidence(
            self._scores,
            self.shape,
            index,
            layout=self._scores_layout,
            mode="bilinear",
            geometry=self._geometry,
            scale=self._scores_scale,
            zero_point=self._scores_zero_point,
            softmax=self._kind == "logits",
        )

    def _binary_confidence(self, index: Optional[int]) -> np.ndarray:
        raw = self._scores  # (h, w) view of the one-channel map
        assert raw is not None
        p = (raw.astype(np.float32) - self._scores_zero_point) * self._scores_scale
        if self._kind == "binary_logit":
            p = 1.0 / (1.0 + np.exp(-p))
        if index == 0:
            p = 1.0 - p
        elif index is None:
            p = np.maximum(p, 1.0 - p)
        if self._geometry is not None:
            x0, y0, w, h = self._geometry.scale_crop(p.shape)
            p = p[y0 : y0 + h, x0 : x0 + w]
        return cv2.resize(np.ascontiguousarray(p, dtype=np.float32), (self.shape[1], self.shape[0]),
                          interpolation=cv2.INTER_LINEAR)

    # ------------------------------------------------------------------ files

    def save(self, path: Union[str, Path], what: str = "mask", *, alpha: float = 0.5, overwrite: bool = True,
             legend: bool = False) -> Path:
        """Write ``what`` to ``path`` and return the path.

        ``what="mask"`` writes the class indices as a single-channel image (lossless format
        required: .png, .bmp, .tif); ``"overlay"`` the blend of :meth:`overlay`; ``"color"``
        the colourised mask.  The file is written atomically (temporary file, then rename);
        ``overwrite=False`` refuses an existing file, and a symbolic link at ``path`` or an
        extension OpenCV cannot encode is refused (:class:`~mtkseg.errors.OutputError`).  ``legend=True`` draws the class
        legend on ``"overlay"`` and ``"color"`` images.
        """
        if not isinstance(path, (str, Path)):
            raise InvalidTypeError(f"path: expected a str or Path, got {type(path).__name__}")
        path = Path(path)
        if what == "mask":
            if path.suffix.lower() not in _LOSSLESS:
                raise InvalidArgumentError(f"path: a class mask needs a lossless format ({', '.join(_LOSSLESS)}), got {path.name!r}")
            image = self.mask
        elif what == "overlay":
            image = self.overlay(alpha=alpha, legend=legend)
        elif what == "color":
            image = self.colorize(legend=legend)
        else:
            raise InvalidArgumentError(f"what: expected 'mask', 'overlay' or 'color', got {what!r}")
        if image.ndim == 3 and self.color == "rgb":
            image = image[:, :, ::-1]
        if not path.parent.is_dir():
            raise InvalidArgumentError(f"path: folder {path.parent} does not exist")
        return _io.write_image(path, image, overwrite=overwrite, what="path")

    def __repr__(self) -> str:
        t = ", ".join(f"{k}={v:.2f}ms" for k, v in self.timings.items())
        return f"SegmentationResult(shape={self.shape}, classes={self.num_classes}, {t})"
