"""Video encoders behind :class:`~mtkseg.video.VideoSink`: H.264 through PyAV, the rest through OpenCV.

OpenCV's pip wheels cannot encode H.264, and ``mp4v`` (MPEG-4 Part 2) files do not play in
browsers.  PyAV's wheels bundle FFmpeg with libx264, so ``.mp4``/``.mov``/``.m4v``/``.mkv``
outputs are written as H.264, ``yuv420p``, with the index at the front of MP4/MOV files
(``movflags=+faststart``): they play in every browser and start before the whole file loads.
Without PyAV (``pip install av``) the sink falls back to OpenCV's codecs and says so once.
"""

from __future__ import annotations

import logging
import threading
from fractions import Fraction
from typing import Any, Optional, Tuple

import numpy as np

from ..errors import StreamError

__all__ = ["H264_NAMES", "load_av", "PyAVWriter", "warn_no_av_once"]

log = logging.getLogger("mtkseg.video.sinks")

#: Names accepted for H.264 in ``codec=`` / ``--codec`` (case-insensitive).
H264_NAMES = ("h264", "avc1", "x264", "libx264")
#: FFmpeg container format per extension.
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
#: Settings of the H.264 encoder: fast enough to keep up with a 2-core pipeline, visually clean.
X264_OPTIONS = {"preset": "veryfast", "crf": "20"}

_warned = False
_warn_lock = threading.Lock()


def load_av() -> Optional[Any]:
    """The ``av`` module, or None when PyAV is not installed (or its import is blocked)."""
    try:
        import av  # type: ignore[import-not-found]
    except ImportError:
        return None
    return av


def warn_no_av_once(path: Any, fallback: str) -> None:
    """Log (once per process) that H.264 needs PyAV and what is written instead."""
    global _warned
    with _warn_lock:
        if _warned:
            return
        _warned = True
    log.warning("%s: PyAV is not installed, so H.264 is not available; writing %s with OpenCV instead "
                "(may not play in browsers). Install it with: pip install av", path, fallback)


class PyAVWriter:
    """Encode BGR frames to H.264 ``yuv420p`` with PyAV (the interface of ``cv2.VideoWriter``
    that :class:`~mtkseg.video.VideoSink` uses: :meth:`write`, :meth:`release`).

    Odd frame sizes are padded by one edge pixel row/column (yuv420p needs even sizes); the
    padding is reported in :attr:`padded`.
    """

    codec_name = "h264"

    def __init__(self, av: Any, path: str, extension: str, fps: float, size: Tuple[int, int]) -> None:
        h, w = size
        fmt = _FORMATS.get(extension.lower())
        if fmt is None:
            raise StreamError(f"H.264 output needs an .mp4, .m4v, .mov or .mkv file, got {extension!r}")
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        self.padded = (h % 2, w % 2)
        self._size = (h + h % 2, w + w % 2)
        try:
            self._container = av.open(path, mode="w", format=fmt, options=options)
        except Exception as exc:  # av.FFmpegError / OSError
            raise StreamError(f"cannot write video {path!r}: {exc}") from exc
        try:
            rate = Fraction(fps).limit_denominator(1001)
            self._stream = self._container.add_stream("libx264", rate=rate, options=dict(X264_OPTIONS))
            self._stream.width, self._stream.height = self._size[1], self._size[0]
            self._stream.pix_fmt = "yuv420p"
        except Exception as exc:
            self._container.close()
            raise StreamError(f"cannot start the H.264 encoder for {path!r}: {exc}; pass codec='mp4v' to use "
                              "OpenCV's MPEG-4 encoder instead") from exc
        self._av = av
        self._frames = 0
        self._open = True

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoWriter's name
        return self._open

    def write(self, image: np.ndarray) -> None:
        """Encode one ``HxWx3`` uint8 BGR frame."""
        if self.padded != (0, 0):
            image = np.pad(image, ((0, self.padded[0]), (0, self.padded[1]), (0, 0)), mode="edge")
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = self._frames
        self._frames += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def release(self) -> None:
        """Flush the encoder and close the file (idempotent)."""
        if not self._open:
            return
        self._open = False
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
