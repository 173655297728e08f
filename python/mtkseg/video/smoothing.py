"""Temporal smoothing of segmentation masks, and a flicker measure.

Two smoothers, both computed by the native core:

* :class:`EMASmoother` (``smoothing="ema"``): exponential moving average of the class
  scores at model resolution, ``state = m * state + (1 - m) * scores``, applied through the
  Segmenter's ``score_filter`` hook before the argmax.  It damps flicker without a fixed
  delay; ``momentum`` trades stability for lag (0 = off, 0.6 default ≈ 2.5-frame time constant).
* :class:`Mode3Smoother` (``smoothing="mode3"``): per-pixel majority over the last three
  masks (the newest wins where all three differ).  It removes one-frame blips exactly and
  lags edges by at most one frame.

Both keep state across frames: one smoother serves one stream at a time (the pipeline
creates a fresh one per stream when given a name).
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np

from .. import ops
from .. import _validate as _v
from ..errors import InvalidArgumentError, InvalidTypeError

__all__ = ["TemporalSmoother", "EMASmoother", "Mode3Smoother", "make_smoother", "flicker", "SMOOTHERS"]

#: Names accepted by ``smoothing=``.
SMOOTHERS = ("ema", "mode3")


class TemporalSmoother:
    """Base class: a smoother may filter the model scores (:attr:`score_filter`), the final
    mask (:meth:`smooth_mask`), or both.  Subclass it to plug your own into the pipeline."""

    name = "none"

    @property
    def score_filter(self) -> Optional[Callable[[np.ndarray, float, int], np.ndarray]]:
        """A ``score_filter(scores, scale, zero_point) -> scores`` for ``Segmenter.run``, or None."""
        return None

    def smooth_mask(self, mask: np.ndarray) -> np.ndarray:
        """The smoothed version of ``mask`` (the newest frame's); default: unchanged."""
        return mask

    def reset(self) -> None:
        """Forget the history (start of a new stream or a scene cut)."""


class EMASmoother(TemporalSmoother):
    """Exponential moving average of the (dequantised) class scores.

    Args:
        momentum: weight of the past, in ``[0, 1)``: ``state = m * state + (1 - m) * x``.
    """

    name = "ema"

    def __init__(self, momentum: float = 0.6) -> None:
        if not _v.is_number(momentum):
            raise InvalidTypeError(f"momentum: expected a float in [0, 1), got {type(momentum).__name__}")
        if not 0.0 <= float(momentum) < 1.0:
            raise InvalidArgumentError(f"momentum: expected a value in [0, 1) (0 disables smoothing), got {momentum!r}")
        self.momentum = float(momentum)
        self._state: Optional[np.ndarray] = None

    @property
    def score_filter(self) -> Callable[[np.ndarray, float, int], np.ndarray]:
        return self._filter

    def _filter(self, scores: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
        if not isinstance(scores, np.ndarray) or scores.ndim != 3:
            raise InvalidArgumentError(
                f"scores: expected (h, w, C) model scores, got {getattr(scores, 'shape', type(scores).__name__)}"
            )
        if scores.dtype.kind == "f":  # float tensors carry no (or a zero) quantisation scale
            scale, zero_point = 1.0, 0
        state = self._state if self._state is not None and self._state.shape == scores.shape else None
        self._state = ops.ema_update(state, scores, self.momentum, scale=float(scale), zero_point=int(zero_point))
        return self._state

    def reset(self) -> None:
        self._state = None

    def __repr__(self) -> str:
        return f"EMASmoother(momentum={self.momentum})"


class Mode3Smoother(TemporalSmoother):
    """Per-pixel majority of the last three masks (the newest wins where all differ).

    The first two frames pass unchanged; a change of frame size restarts the history.
    """

    name = "mode3"

    def __init__(self) -> None:
        self._older: Optional[np.ndarray] = None
        self._old: Optional[np.ndarray] = None

    def smooth_mask(self, mask: np.ndarray) -> np.ndarray:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.ndim != 2:
            raise InvalidArgumentError(
                f"mask: expected an HxW uint8 class mask, got {getattr(mask, 'dtype', type(mask).__name__)} "
                f"{getattr(mask, 'shape', '')}"
            )
        raw = np.array(mask, copy=True, order="C")
        if self._old is None or self._old.shape != raw.shape:
            self._older, self._old = None, raw
            return mask
        if self._older is None:
            self._older, self._old = self._old, raw
            return mask
        smoothed = ops.mode3(self._older, self._old, raw)
        self._older, self._old = self._old, raw
        return smoothed

    def reset(self) -> None:
        self._older = self._old = None

    def __repr__(self) -> str:
        return "Mode3Smoother()"


def make_smoother(spec: Union[None, str, TemporalSmoother], *, momentum: Optional[float] = None) -> Optional[TemporalSmoother]:
    """A fresh smoother for ``spec``: None/``"none"`` (no smoothing), ``"ema"``, ``"mode3"``
    or a :class:`TemporalSmoother` instance (returned as is, after :meth:`~TemporalSmoother.reset`).
    ``momentum`` sets the EMA factor for ``"ema"``."""
    if spec is None or (isinstance(spec, str) and spec.lower() == "none"):
        if momentum is not None:
            raise InvalidArgumentError("momentum: only meaningful with smoothing='ema'")
        return None
    if isinstance(spec, TemporalSmoother):
        if momentum is not None:
            raise InvalidArgumentError("momentum: pass it to the smoother you constructed, not alongside it")
        spec.reset()
        return spec
    if isinstance(spec, str):
        name = spec.lower()
        if name == "ema":
            return EMASmoother() if momentum is None else EMASmoother(momentum)
        if name == "mode3":
            if momentum is not None:
                raise InvalidArgumentError("momentum: only meaningful with smoothing='ema'")
            return Mode3Smoother()
        raise InvalidArgumentError(f"smoothing: expected None, 'ema' or 'mode3', got {spec!r}")
    raise InvalidTypeError(f"smoothing: expected None, 'ema', 'mode3' or a TemporalSmoother, got {type(spec).__name__}")


def flicker(previous: np.ndarray, current: np.ndarray) -> float:
    """Share of pixels (0..1) whose class differs between two masks of the same shape."""
    if not isinstance(previous, np.ndarray) or not isinstance(current, np.ndarray):
        raise InvalidTypeError("flicker: expected two numpy masks")
    if previous.shape != current.shape:
        raise InvalidArgumentError(f"flicker: masks differ in shape: {previous.shape} vs {current.shape}")
    if previous.size == 0:
        return 0.0
    return float(np.count_nonzero(previous != current)) / previous.size
