"""Where stream results go: an annotated video file, per-frame mask PNGs, or a callback.

Every sink has ``start(source)`` (called once before the first frame), ``write(frame,
result)`` and ``close()`` (idempotent; finalises files).  Sinks are context managers.

Video codecs by file extension.  ``.mp4``, ``.m4v``, ``.mov`` and ``.mkv`` are written as
H.264 (``yuv420p``, ``movflags=+faststart``: plays in browsers) through PyAV, whose wheels
bundle FFmpeg with libx264 (:mod:`mtkseg.video._encoders`).  Without PyAV they fall back to
OpenCV's list below, with one warning per process.  For OpenCV codecs the first one this
build can open wins (logged at INFO level when it is not the first); each is probed once per
process on a tiny file with OpenCV's own error output muted, so a missing encoder (``avc1``
in the pip wheels) does not print FFmpeg errors on every run.  What was used is in
:attr:`VideoSink.codec` (and :attr:`VideoSink.fourcc`):

=========  ========================================================================
``.mp4``   ``h264`` (PyAV); without PyAV ``avc1`` (H.264, if this OpenCV has it),
``.m4v``   then ``mp4v`` (MPEG-4 Part 2; the pip ``opencv-python`` wheels only have
``.mov``   this one, and browsers do not play it)
``.mkv``
``.avi``   ``MJPG`` (Motion JPEG), then ``XVID``
``.webm``  ``VP80``, then ``VP90``
=========  ========================================================================

``codec=`` chooses instead: ``"h264"`` (also ``"avc1"``, ``"x264"``), or an OpenCV FourCC
such as ``"mp4v"``, ``"mjpg"``, ``"xvid"``, ``"vp80"`` (case-insensitive; no fallback).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .. import _io
from .. import _validate as _v
from ..errors import InvalidArgumentError, InvalidTypeError, OutputError, StreamError
from ._encoders import H264_NAMES, PyAVWriter, load_av, warn_no_av_once
from .sources import Frame, VideoSource

__all__ = ["Sink", "VideoSink", "MaskSink", "CallbackSink", "as_sinks", "VIDEO_CODECS", "H264_EXTENSIONS",
           "RENDER_MODES"]

log = logging.getLogger(__name__)

#: Extensions written as H.264 through PyAV by default (OpenCV's list below without PyAV).
H264_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv")
#: OpenCV codecs tried for each output extension, in order of preference.
VIDEO_CODECS: Dict[str, Tuple[str, ...]] = {
    ".mp4": ("avc1", "mp4v"),
    ".m4v": ("avc1", "mp4v"),
    ".mov": ("avc1", "mp4v"),
    ".mkv": ("avc1", "mp4v"),
    ".avi": ("MJPG", "XVID"),
    ".webm": ("VP80", "VP90"),
}
#: What :class:`VideoSink` draws: the frame with the mask blended in, the colour mask, or
#: frame and colour mask side by side.
RENDER_MODES = ("overlay", "colorize", "side-by-side")
# (fourcc, extension) -> whether this OpenCV build can write it (probed once per process).
_CODEC_WORKS: Dict[Tuple[str, str], bool] = {}


@contextlib.contextmanager
def _native_stderr_muted():
    """Send file descriptor 2 (where FFmpeg and OpenCV print) to the null device for a moment."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2: nothing to mute
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def codec_available(fourcc: str, extension: str) -> bool:
    """Whether this OpenCV build can write ``fourcc`` into a ``extension`` file (cached)."""
    key = (fourcc, extension.lower())
    if key not in _CODEC_WORKS:
        with tempfile.TemporaryDirectory(prefix="mtkseg-codec-") as tmp, _native_stderr_muted():
            writer = cv2.VideoWriter(os.path.join(tmp, "probe" + key[1]), cv2.VideoWriter_fourcc(*fourcc), 25.0, (64, 64))
            _CODEC_WORKS[key] = bool(writer.isOpened())
            writer.release()
    return _CODEC_WORKS[key]


class Sink:
    """Base class of sinks.  Subclasses implement :meth:`write` and usually :meth:`close`."""

    def start(self, source: VideoSource) -> None:
        """Called once with the stream's source before the first :meth:`write`."""

    def write(self, frame: Frame, result: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Flush and finalise.  Idempotent."""

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class VideoSink(Sink):
    """Write an annotated video with ``cv2.VideoWriter`` (same size as the frames).

    Args:
        path: output file; the extension picks the codec (see the module docs).  Missing
            parent folders are created.
        fps: frame rate of the output; default the source's.  Required for sources without
            one (folders, iterables) unless given to the stream.
        codec: ``"h264"`` (PyAV; OpenCV's ``avc1`` without PyAV) or an OpenCV FourCC such as
            ``"mp4v"`` or ``"mjpg"``, instead of the extension's default (see the module docs).
        render: ``"overlay"`` (default), ``"colorize"``, ``"side-by-side"``, or a function
            ``render(frame, result) -> HxWx3 uint8 BGR image``.
        alpha: overlay opacity of the mask (0..1).
        legend: draw the class colours and names in the top-left corner (built-in renders).
        overwrite: replace an existing file at ``path`` (default True; the CLI passes its
            ``--overwrite``).  The input video, or a symbolic link at ``path``, is never
            written whatever this says (:class:`~mtkseg.errors.OutputError`).

    The writer opens on the first frame; every later frame must have the same size.  In live
    mode the output holds only the processed frames, written at ``fps``.  Frames go to a
    hidden temporary file beside ``path`` that replaces it on :meth:`close`, so a crash never
    leaves half a video where a good one was.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike],
        *,
        fps: Optional[float] = None,
        codec: Optional[str] = None,
        render: Union[str, Callable[[Frame, Any], np.ndarray]] = "overlay",
        alpha: float = 0.5,
        overwrite: bool = True,
        legend: bool = False,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidTypeError(f"path: expected a file path, got {type(path).__name__}")
        self.path = Path(path)
        ext = self.path.suffix.lower()
        #: H.264 through PyAV first (default for .mp4/.mov/.m4v/.mkv, or codec="h264").
        self.h264 = False
        if codec is not None:
            if not isinstance(codec, str) or not (codec.lower() in H264_NAMES or len(codec) == 4):
                raise InvalidArgumentError(f"codec: expected 'h264' or a four-character code such as 'mp4v', "
                                           f"got {codec!r}")
            if codec.lower() in H264_NAMES:
                if ext not in H264_EXTENSIONS:
                    raise InvalidArgumentError(f"codec: H.264 needs an {', '.join(H264_EXTENSIONS)} file, "
                                               f"got {str(path)!r}")
                self.h264 = True
                self.codecs: Tuple[str, ...] = ("avc1",)  # OpenCV's H.264 if PyAV is missing
            else:
                code = codec.upper() if codec.lower() in ("mjpg", "xvid", "vp80", "vp90") else codec
                self.codecs = (code,)
        elif ext in VIDEO_CODECS:
            self.h264 = ext in H264_EXTENSIONS
            self.codecs = VIDEO_CODECS[ext]
        else:
            raise InvalidArgumentError(
                f"path: cannot pick a codec for {str(path)!r}; use one of {', '.join(VIDEO_CODECS)} or pass codec="
            )
        _v.number(fps, "fps", minimum=0.0, min_open=True, none_ok=True, expected="a positive number")
        if not callable(render) and render not in RENDER_MODES:
            raise InvalidArgumentError(f"render: expected one of {RENDER_MODES} or a function, got {render!r}")
        _v.number(alpha, "alpha", minimum=0.0, maximum=1.0, expected="a number in [0, 1]")
        self.fps = float(fps) if fps is not None else None
        self.render = render
        self.alpha = float(alpha)
        self.overwrite = bool(overwrite)
        self.legend = bool(legend)
        self._inputs: list = []
        self._tmp: Optional[Path] = None
        self._existed = False
        self.fourcc: Optional[str] = None
        #: What encodes the file once open, e.g. ``"h264 (PyAV libx264)"`` or ``"mp4v (OpenCV)"``.
        self.codec: Optional[str] = None
        self.size: Optional[Tuple[int, int]] = None  # (height, width) once open
        self.frames_written = 0
        self._writer: Optional[Any] = None  # cv2.VideoWriter or PyAVWriter
        self._closed = False

    def start(self, source: VideoSource) -> None:
        self._inputs = list(getattr(source, "paths", None) or ([source.name] if source.kind == "file" else []))
        _io.check_output(self.path, inputs=self._inputs, overwrite=self.overwrite, what="video output")
        if not (self.h264 and load_av() is not None):  # PyAV needs no probing
            for code in self.codecs[:-1]:  # probe now, before the stream's threads print anything
                if codec_available(code, self.path.suffix.lower()):
                    break
        if self.fps is None:
            if source.fps is None:
                raise InvalidArgumentError(
                    f"fps: {source.name} has no frame rate; pass fps= to VideoSink (or to the stream)"
                )
            self.fps = source.fps

    def _image(self, frame: Frame, result: Any) -> np.ndarray:
        if callable(self.render):
            image = self.render(frame, result)
        elif self.render == "overlay":
            image = result.overlay(frame.image, alpha=self.alpha)
        elif self.render == "colorize":
            image = result.colorize()
        else:
            image = np.hstack([frame.image, result.colorize()])
        if self.legend and not callable(self.render):
            image = result.add_legend(image)
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InvalidArgumentError(
                f"render: must produce an HxWx3 uint8 image, got {getattr(image, 'dtype', type(image).__name__)} "
                f"{getattr(image, 'shape', '')}"
            )
        return image

    def _open(self, size: Tuple[int, int]) -> None:
        if self.fps is None:
            raise InvalidArgumentError(f"fps: unknown for {self.path}; pass fps= to VideoSink")
        _io.check_output(self.path, inputs=self._inputs, overwrite=self.overwrite, what="video output")
        _io.ensure_dir(self.path.parent, what="video output")
        self._existed = self.path.exists()
        tmp = _io.new_temp_path(self.path, what="video output")
        h, w = size
        ext = self.path.suffix.lower()
        if self.h264:
            av = load_av()
            if av is not None:
                try:
                    writer = PyAVWriter(av, str(tmp), ext, self.fps, size)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
                if writer.padded != (0, 0):
                    log.info("%s: %dx%d padded to even %dx%d for H.264 yuv420p", self.path, w, h,
                             w + writer.padded[1], h + writer.padded[0])
                self._writer, self.fourcc, self.size, self._tmp = writer, "avc1", size, tmp
                self.codec = "h264 (PyAV libx264, yuv420p)"
                return
            usable = [c for c in self.codecs if len(self.codecs) == 1 or codec_available(c, ext)]
            warn_no_av_once(self.path, usable[0] if usable else self.codecs[-1])
        for code in self.codecs:
            if len(self.codecs) > 1 and not codec_available(code, ext):
                continue  # an explicit codec= is always tried, so its failure is reported
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*code), self.fps, (w, h))
            if writer.isOpened():
                if code != self.codecs[0] and not self.h264:  # the H.264 fallback was warned about
                    log.info("%s: codec %s is not available in this OpenCV build; writing %s instead",
                             self.path, self.codecs[0], code)
                self._writer, self.fourcc, self.size, self._tmp = writer, code, size, tmp
                self.codec = f"{code} (OpenCV)"
                return
            writer.release()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StreamError(
            f"cannot write video {str(self.path)!r}: this OpenCV build has none of the codecs {', '.join(self.codecs)} "
            f"for {self.path.suffix or 'this extension'} (or the folder is not writable); try an .avi or .mp4 path"
        )

    def write(self, frame: Frame, result: Any) -> None:
        if self._closed:
            raise StreamError(f"{self.path}: the video sink is closed")
        image = self._image(frame, result)
        size = (int(image.shape[0]), int(image.shape[1]))
        if self._writer is None:
            self._open(size)
        elif size != self.size:
            raise InvalidArgumentError(
                f"frame {frame.index}: {size[1]}x{size[0]} differs from the {self.size[1]}x{self.size[0]} "  # type: ignore[index]
                f"the video {self.path} was opened with; a video file needs one frame size"
            )
        self._writer.write(np.ascontiguousarray(image))  # type: ignore[union-attr]
        self.frames_written += 1

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            tmp, self._tmp = self._tmp, None
            if self._writer is not None:
                try:
                    self._writer.release()
                except Exception as exc:  # the encoder failed to flush: say where the frames are
                    raise StreamError(f"{self.path}: finishing the video failed ({exc}); the partial file is "
                                      f"{str(tmp)!r}") from exc
            if tmp is not None:  # move the finished file into place (it holds every frame written)
                try:
                    _io.commit(tmp, self.path, inputs=self._inputs, overwrite=self.overwrite,
                               what="video output", existed=self._existed)
                except OutputError as exc:
                    raise OutputError(f"{exc}; the {self.frames_written} frames written are kept in {str(tmp)!r}") from None

    def __repr__(self) -> str:
        return f"VideoSink({str(self.path)!r}, fps={self.fps}, codec={self.codec}, frames={self.frames_written})"


class MaskSink(Sink):
    """Write each mask as a PNG into a folder.

    Args:
        directory: output folder (created if missing).
        pattern: file name pattern, formatted with ``index`` (source frame index) and
            ``timestamp_ms``; default ``"{index:06d}.png"``.
        colorize: write the colour mask (``result.colorize()``) instead of class indices
            (single-channel PNGs whose values are class ids).
        overwrite: replace existing mask files (default True; the CLI passes its
            ``--overwrite``).  A symbolic link in the folder is never written through.

    The pattern names a file inside ``directory``: path separators and ``..`` are rejected.
    Each mask is written atomically (temporary file, then rename).
    """

    def __init__(self, directory: Union[str, os.PathLike], *, pattern: str = "{index:06d}.png", colorize: bool = False,
                 overwrite: bool = True) -> None:
        if not isinstance(directory, (str, os.PathLike)):
            raise InvalidTypeError(f"directory: expected a folder path, got {type(directory).__name__}")
        if not isinstance(pattern, str) or not pattern.lower().endswith(".png"):
            raise InvalidArgumentError(f"pattern: expected a file name pattern ending in .png, got {pattern!r}")
        if "/" in pattern or "\\" in pattern or os.sep in pattern or pattern.startswith(".."):
            raise InvalidArgumentError(f"pattern: {pattern!r} must be a plain file name inside the folder "
                                       "(no path separators or '..')")
        try:
            pattern.format(index=0, timestamp_ms=0.0)
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidArgumentError(f"pattern: {pattern!r} may only use {{index}} and {{timestamp_ms}} ({exc})") from None
        self.directory = Path(directory)
        self.pattern = pattern
        self.colorize = bool(colorize)
        self.overwrite = bool(overwrite)
        self.frames_written = 0
        if self.directory.exists() and not self.directory.is_dir():
            raise InvalidArgumentError(f"directory: {str(self.directory)!r} exists and is not a folder")
        _io.ensure_dir(self.directory, what="masks folder")

    def write(self, frame: Frame, result: Any) -> None:
        name = self.pattern.format(index=frame.index, timestamp_ms=frame.timestamp_ms)
        if os.path.basename(name) != name or name in (".", ".."):  # a formatted value cannot add a folder either
            raise InvalidArgumentError(f"pattern: {self.pattern!r} gave {name!r}, which is not a file name")
        path = self.directory / name
        image = result.colorize() if self.colorize else result.mask
        _io.write_image(path, image, overwrite=self.overwrite, what="masks", fsync=False)
        self.frames_written += 1

    def __repr__(self) -> str:
        return f"MaskSink({str(self.directory)!r}, frames={self.frames_written})"


class CallbackSink(Sink):
    """Call ``fn(frame, result)`` for each processed frame (in order, on the consumer thread)."""

    def __init__(self, fn: Callable[[Frame, Any], Any]) -> None:
        if not callable(fn):
            raise InvalidTypeError(f"fn: expected a callable fn(frame, result), got {type(fn).__name__}")
        self.fn = fn

    def write(self, frame: Frame, result: Any) -> None:
        self.fn(frame, result)


def as_sinks(sink: Union[None, str, os.PathLike, Sink, Sequence[Any]], callback: Optional[Callable] = None) -> list:
    """Normalise ``sink=`` / ``callback=`` of :func:`~mtkseg.video.process` to a list of sinks.

    A path with a video extension becomes a :class:`VideoSink`; any other path is taken as
    a folder for a :class:`MaskSink`.
    """
    items: list = []
    if sink is None:
        pass
    elif isinstance(sink, Sink):
        items.append(sink)
    elif isinstance(sink, (str, os.PathLike)):
        p = Path(sink)
        items.append(VideoSink(p) if p.suffix.lower() in VIDEO_CODECS else MaskSink(p))
    elif isinstance(sink, (list, tuple)):
        for s in sink:
            items.extend(as_sinks(s))
    else:
        raise InvalidTypeError(f"sink: expected a Sink, a path or a list of them, got {type(sink).__name__}")
    if callback is not None:
        items.append(CallbackSink(callback))
    return items
