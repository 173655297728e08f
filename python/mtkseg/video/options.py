"""``StreamOptions``: how a :class:`~mtkseg.video.VideoStream` reads and segments a source,
declared once.

::

    opts = mtkseg.StreamOptions(smoothing="ema", every=2, max_frames=100)
    with seg.stream("clip.mp4", options=opts) as frames:     # = seg.stream("clip.mp4", smoothing="ema", ...)
        ...

A frozen dataclass validated in ``__post_init__``; :func:`~mtkseg.video.stream`,
``Segmenter.stream``, :class:`~mtkseg.video.VideoStream` and :func:`~mtkseg.video.process`
take it whole (``options=``) or build it from their keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from .. import _validate as v
from ..errors import InvalidArgumentError, InvalidTypeError
from ..options import OptionsBase
from .smoothing import TemporalSmoother

__all__ = ["StreamOptions", "DEFAULT_QUEUE_SIZE", "SMOOTHINGS"]

#: Frames held between stages in file mode (per queue).
DEFAULT_QUEUE_SIZE = 4
SMOOTHINGS = ("none", "ema", "mode3")


@dataclass(frozen=True)
class StreamOptions(OptionsBase):
    """Options of a video stream.

    Attributes:
        live: live mode (process only the newest frame, count dropped ones); None: True for
            cameras and URLs, False otherwise.
        smoothing: None, ``"ema"`` (score EMA in the native core), ``"mode3"`` (majority of
            the last 3 masks) or a :class:`~mtkseg.video.TemporalSmoother`.
        ema_momentum: EMA factor for ``smoothing="ema"`` (default 0.6), in ``[0, 1)``.
        every: process every N-th frame only (frame indices 0, N, 2N, ...).
        max_frames: stop after this many processed frames (None: all).
        queue_size: frames buffered between stages in file mode.
        realtime: pace reading at the source frame rate; None: True for a video file (or an
            image folder with ``fps``) read in live mode, to simulate a camera.
        fps: frame rate of sources that have none (folders, iterables).
        workers: interpreters inferring consecutive frames at once (file mode, a
            :class:`mtkseg.Segmenter` only); None picks them (see :mod:`mtkseg.video.pipeline`).

    Raises:
        InvalidArgumentError, InvalidTypeError: a field has a wrong value or type.
    """

    live: Optional[bool] = None
    smoothing: Union[None, str, TemporalSmoother] = None
    ema_momentum: Optional[float] = None
    every: int = 1
    max_frames: Optional[int] = None
    queue_size: int = DEFAULT_QUEUE_SIZE
    realtime: Optional[bool] = None
    fps: Optional[float] = None
    workers: Optional[int] = None

    def __post_init__(self) -> None:
        s = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731  (frozen)
        v.optional_bool(self.live, "live")
        v.optional_bool(self.realtime, "realtime")
        if isinstance(self.smoothing, str):
            s("smoothing", v.choice(self.smoothing, SMOOTHINGS, "smoothing"))
            if self.smoothing == "none":
                s("smoothing", None)
        elif self.smoothing is not None and not isinstance(self.smoothing, TemporalSmoother):
            raise InvalidTypeError(
                f"smoothing: expected None, 'ema', 'mode3' or a TemporalSmoother, got {type(self.smoothing).__name__}")
        if self.ema_momentum is not None:
            s("ema_momentum", v.number(self.ema_momentum, "ema_momentum", minimum=0.0, maximum=1.0, max_open=True,
                                       expected="a value in [0, 1) (0 disables smoothing)"))
            if self.smoothing != "ema":
                raise InvalidArgumentError("ema_momentum: only meaningful with smoothing='ema'")
        s("every", v.integer(self.every, "every", minimum=1))
        s("max_frames", v.integer(self.max_frames, "max_frames", minimum=1, none_ok=True))
        s("queue_size", v.integer(self.queue_size, "queue_size", minimum=1))
        s("fps", v.number(self.fps, "fps", minimum=0.0, min_open=True, none_ok=True,
                          expected="a positive number of frames per second"))
        s("workers", v.integer(self.workers, "workers", minimum=1, none_ok=True,
                               expected="an integer >= 1 or None (automatic)"))
