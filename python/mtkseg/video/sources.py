"""Frame sources: video files, cameras, network streams, image folders and numpy iterables.

:func:`open_source` turns whatever the user points at into a :class:`VideoSource`, an
iterable of :class:`Frame` objects.  OpenCV's ``VideoCapture`` does all video decoding.

=====================================  ==================  =====================================
``src``                                kind / live         timestamps
=====================================  ==================  =====================================
``int`` or digit string (``"0"``)      camera, live        wall clock (ms since the source opened)
``rtsp://``, ``http(s)://``, ...       url, live           wall clock
URL of a video file (known length)     url                 container (``CAP_PROP_POS_MSEC``)
path of a video file                   file                container (``CAP_PROP_POS_MSEC``)
path of an image file                  images (1 frame)    ``index * 1000 / fps`` or wall clock
folder of images, or a glob pattern    images (sorted)     ``index * 1000 / fps`` or wall clock
iterable of numpy frames               iterable            ``index * 1000 / fps`` or wall clock
=====================================  ==================  =====================================

Folders and globs are sorted in natural order (``frame_2.png`` before ``frame_10.png``).
"""

from __future__ import annotations

import glob as _glob
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Optional, Tuple, Union

import cv2
import numpy as np

from .. import _validate as _v
from ..errors import InvalidArgumentError, InvalidTypeError, SourceError, StreamError

__all__ = [
    "Frame",
    "VideoSource",
    "CaptureSource",
    "ImageFolderSource",
    "IterableSource",
    "open_source",
    "IMAGE_EXTENSIONS",
    "URL_SCHEMES",
]

log = logging.getLogger(__name__)

#: File extensions read as still images (by ``cv2.imread``) rather than as video.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
#: URL schemes opened as network streams (live by default).
URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_URL_RE = re.compile(r"^(%s)://" % "|".join(URL_SCHEMES), re.I)
#: How long a network stream may take to open / to deliver the next frame before it counts as failed.
NETWORK_TIMEOUT_MS = 10_000


def _url_failure(elapsed_s: float) -> str:
    """Why a URL did not open, with the time it really took (a refused connection fails at once)."""
    timeout = NETWORK_TIMEOUT_MS / 1000
    if elapsed_s >= 0.9 * timeout:
        return f"the stream did not answer within the {timeout:.0f} s timeout; check the URL and the network"
    return (f"it failed after {elapsed_s:.1f} s, before the {timeout:.0f} s timeout: the connection was refused, "
            "the host is unknown or it is not a video stream; check the URL and that the server is running")
# When a file ends this many frames (and more than 1 %) short of the count in its header,
# it is reported as truncated.  Containers that only estimate the count are off by one or two.
_TRUNCATION_SLACK = 2
#: A file stops after this many undecodable frames in a row (short of the frame count in its
#: header); fewer are skipped, counted in ``VideoSource.corrupt`` and warned about once.
MAX_CONSECUTIVE_CORRUPT = 25

SourceLike = Union[int, str, os.PathLike, Iterable[np.ndarray]]


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes:
        index: position in the source, counted from 0 (frames skipped by ``every`` or dropped
            in live mode keep their numbers, so indices may have gaps downstream).
        timestamp_ms: presentation time in milliseconds: the container's timestamp for files,
            milliseconds since the source was opened for live sources and un-timed iterables.
        image: the pixels, ``HxWx3`` uint8 BGR as OpenCV decodes them (iterables: as given).
    """

    index: int
    timestamp_ms: float
    image: np.ndarray

    @property
    def size(self) -> Tuple[int, int]:
        """``(height, width)`` of the image."""
        return (int(self.image.shape[0]), int(self.image.shape[1]))


class VideoSource:
    """Base class of frame sources: iterate it for :class:`Frame` objects, then :meth:`close`.

    Attributes:
        name: how the source is named in messages (path, URL, ``camera 0``, ...).
        kind: ``"file"``, ``"camera"``, ``"url"``, ``"images"`` or ``"iterable"``.
        live: whether the source produces frames at its own pace (cameras, streams); the
            pipeline defaults to live mode (drop stale frames) for these.
        fps: frames per second when known, else None.
        frame_count: number of frames when known (files, folders, sized iterables), else None.
        size: ``(height, width)`` when known before reading, else None.
        skipped: frames passed over by :meth:`frames` with ``every > 1``.
        corrupt: undecodable frames skipped (video files; see :class:`CaptureSource`).

    A source is iterated once.  Reading stops at the end of the source; a source that fails
    part-way raises :class:`~mtkseg.errors.StreamError` from the iterator after the last
    good frame.  Sources are context managers.
    """

    kind: str = "source"

    def __init__(self, name: str, *, live: bool, fps: Optional[float], frame_count: Optional[int],
                 size: Optional[Tuple[int, int]]) -> None:
        self.name = name
        self.live = bool(live)
        self.fps = float(fps) if fps else None
        self.frame_count = int(frame_count) if frame_count is not None and frame_count >= 0 else None
        self.size = size
        self.skipped = 0
        self.corrupt = 0
        self._started = False
        self._closed = False

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def frames(self, every: int = 1) -> Iterator[Frame]:
        """Iterate the frames, yielding every ``every``-th one (indices 0, N, 2N, ...).

        Frames in between are skipped without being converted where the backend allows
        (``VideoCapture.grab``); :attr:`skipped` counts them.
        """
        _v.integer(every, "every", minimum=1)
        if self._closed:
            raise SourceError(f"{self.name}: the source is closed; open it again to read it")
        if self._started:
            raise SourceError(f"{self.name}: a source can be iterated only once; open it again to re-read it")
        self._started = True
        return self._iterate(int(every))

    def _iterate(self, every: int) -> Iterator[Frame]:
        while not self._closed:
            frame = self._read()
            if frame is None:
                return
            yield frame
            for _ in range(every - 1):
                if self._closed or not self._skip():
                    return
                self.skipped += 1

    def _read(self) -> Optional[Frame]:  # pragma: no cover - abstract
        """The next frame, or None at the end; raises StreamError on a mid-stream failure."""
        raise NotImplementedError

    def _skip(self) -> bool:
        """Advance one frame without returning it; False at the end."""
        frame = self._read()
        return frame is not None

    def close(self) -> None:
        """Release the underlying device/file.  Idempotent."""
        self._closed = True

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, live={self.live}, fps={self.fps}, frames={self.frame_count})"


class CaptureSource(VideoSource):
    """A video file, camera or network stream decoded by ``cv2.VideoCapture``.

    Use :func:`open_source` rather than constructing it directly.  For files (and URLs of
    files, whose container reports a length: :attr:`finite`), a stream that ends clearly
    short of the frame count in the container header raises
    :class:`~mtkseg.errors.StreamError` (truncated/corrupt file) after the last good frame;
    for cameras and streams, which have no natural end, a failed read raises it.

    In a file whose header gives a frame count, an undecodable frame before the end is
    skipped (its index stays unused, :attr:`corrupt` counts it, a warning is logged once);
    reading stops at the end (position >= frame count) or after
    :data:`MAX_CONSECUTIVE_CORRUPT` failed frames in a row.
    """

    def __init__(self, target: Union[int, str], kind: str, *, live: Optional[bool] = None) -> None:
        if kind not in ("file", "camera", "url"):
            raise InvalidArgumentError(f"kind: expected 'file', 'camera' or 'url', got {kind!r}")
        self.kind = kind
        name = f"camera {target}" if kind == "camera" else str(target)
        opened_at = time.monotonic()
        if kind == "url":
            cap = cv2.VideoCapture(
                str(target), cv2.CAP_FFMPEG,
                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, NETWORK_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, NETWORK_TIMEOUT_MS],
            )
        else:
            cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            hint = {
                "file": "it is not a video OpenCV can decode (unsupported codec, corrupt or truncated file)",
                "camera": "no such device, or it is in use by another program",
                "url": _url_failure(time.monotonic() - opened_at),
            }[kind]
            raise SourceError(f"cannot open video source {name!r}: {hint}")
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if kind != "camera" else -1
        # A URL with a known length is a video file served over the network, not a stream.
        self.finite = kind == "file" or count > 0
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        super().__init__(
            name,
            live=(not self.finite) if live is None else live,
            fps=fps if fps and np.isfinite(fps) and 0 < fps < 1000 else None,
            frame_count=count if count > 0 else None,
            size=(h, w) if h > 0 and w > 0 else None,
        )
        self._position = 0
        self._t0 = time.monotonic()

    def _timestamp(self) -> float:
        if self.finite:
            return float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
        return (time.monotonic() - self._t0) * 1000.0

    def _end(self) -> None:
        """Called when a read fails: decide between a normal end and a failure."""
        n = self._position
        if not self.finite:
            raise StreamError(f"{self.name}: stopped delivering frames after {n} frames (disconnected or timed out)")
        expected = self.frame_count
        if expected is not None and expected - n > max(_TRUNCATION_SLACK, expected // 100):
            if self.corrupt:  # damage swallowed frames without a trace: no telling a short tail from it
                log.warning("%s: ended %d frames short of the %d its header announces, after %d undecodable "
                            "frames were skipped", self.name, expected - n, expected, self.corrupt)
                return
            raise StreamError(
                f"{self.name}: the file ended after {n} of the {expected} frames its header announces "
                "(truncated or corrupt file)"
            )

    def _may_skip_corrupt(self, failures: int) -> bool:
        """After ``failures`` failed reads in a row: whether to try the next frame."""
        if self.kind != "file" or self.frame_count is None or failures >= MAX_CONSECUTIVE_CORRUPT:
            return False
        position = max(self._position + failures, int(self._cap.get(cv2.CAP_PROP_POS_FRAMES) or 0))
        return position < self.frame_count

    def _recovered(self, failures: int) -> None:
        if not self.corrupt:
            log.warning("%s: skipping undecodable frames (first at frame %d); the stream goes on", self.name,
                        self._position)
        self.corrupt += failures
        self._position += failures

    def _read(self) -> Optional[Frame]:
        failures = 0
        while True:
            ok, image = self._cap.read()
            if ok and image is not None:
                break
            failures += 1
            if not self._may_skip_corrupt(failures):
                self._end()
                return None
        if failures:
            self._recovered(failures)
        index = self._position
        self._position += 1
        return Frame(index, self._timestamp(), image)

    def _skip(self) -> bool:
        if not self._cap.grab():
            return self._read() is not None  # retries past corrupt frames, or ends
        self._position += 1
        return True

    def close(self) -> None:
        if not self._closed:
            super().close()
            self._cap.release()


def _natural_key(path: str) -> List[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path)]


class ImageFolderSource(VideoSource):
    """Still images read with ``cv2.imread`` in natural sort order.

    An unreadable image raises :class:`~mtkseg.errors.StreamError` naming it, after the
    frames before it.
    """

    kind = "images"

    def __init__(self, paths: List[str], name: str, *, fps: Optional[float] = None, live: bool = False) -> None:
        if not paths:
            raise SourceError(f"cannot open video source {name!r}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
        self.paths = list(paths)
        super().__init__(name, live=live, fps=fps, frame_count=len(self.paths), size=None)
        self._position = 0
        self._t0 = time.monotonic()

    def _read(self) -> Optional[Frame]:
        if self._position >= len(self.paths):
            return None
        path = self.paths[self._position]
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise StreamError(f"{self.name}: cannot read image {path!r} (frame {self._position})")
        index = self._position
        self._position += 1
        ts = index * 1000.0 / self.fps if self.fps else (time.monotonic() - self._t0) * 1000.0
        return Frame(index, ts, image)

    def _skip(self) -> bool:
        if self._position >= len(self.paths):
            return False
        self._position += 1
        return True


class IterableSource(VideoSource):
    """Frames from any iterable of numpy images (a list, a generator, a ``(N, H, W, C)`` array).

    Items must be numpy arrays; anything else raises :class:`~mtkseg.errors.SourceError`
    naming the item's index and type.  An exception raised by the iterable itself ends the
    stream with :class:`~mtkseg.errors.StreamError`.

    Frames are passed on without a copy, and the pipeline holds a few of them in its queues:
    yield a new array per frame (as ``cv2.VideoCapture.read()`` does without ``image=``),
    not one buffer refilled in place.
    """

    kind = "iterable"

    def __init__(self, frames: Iterable[np.ndarray], *, fps: Optional[float] = None, live: bool = False,
                 name: Optional[str] = None) -> None:
        try:
            count: Optional[int] = len(frames)  # type: ignore[arg-type]
        except TypeError:
            count = None
        super().__init__(name or f"<{type(frames).__name__} of frames>", live=live, fps=fps, frame_count=count, size=None)
        self._it = iter(frames)
        self._position = 0
        self._t0 = time.monotonic()

    def _next_item(self) -> Optional[np.ndarray]:
        try:
            item = next(self._it)
        except StopIteration:
            return None
        except Exception as exc:  # the user's generator failed: a mid-stream failure
            raise StreamError(f"{self.name}: the frame iterable raised {type(exc).__name__}: {exc} "
                              f"after {self._position} frames") from exc
        if not isinstance(item, np.ndarray):
            raise SourceError(f"{self.name}: item {self._position} is a {type(item).__name__}; "
                              "expected a numpy image (HxW, HxWx3 or HxWx4 uint8)")
        return item

    def _read(self) -> Optional[Frame]:
        image = self._next_item()
        if image is None:
            return None
        index = self._position
        self._position += 1
        ts = index * 1000.0 / self.fps if self.fps else (time.monotonic() - self._t0) * 1000.0
        return Frame(index, ts, image)

    def _skip(self) -> bool:
        if self._next_item() is None:
            return False
        self._position += 1
        return True

    def close(self) -> None:
        if not self._closed:
            super().close()
            closer = getattr(self._it, "close", None)  # finish a generator now, not at GC time
            if callable(closer):
                try:
                    closer()
                except Exception:  # a generator that misbehaves on close must not mask the caller's state
                    log.debug("closing the frame iterable of %s failed", self.name, exc_info=True)


def _check_fps(fps: Optional[float]) -> Optional[float]:
    if fps is None:
        return None
    return _v.number(fps, "fps", minimum=0.0, min_open=True, expected="a positive number of frames per second")


def open_source(src: SourceLike, *, live: Optional[bool] = None, fps: Optional[float] = None) -> VideoSource:
    """Open a frame source.

    Args:
        src: a video file path, a camera index (``int``, or a digit string like ``"0"`` that
            is not an existing file), an RTSP/HTTP(S)/RTMP/UDP URL, a folder of images, a glob
            pattern (``"frames/*.png"``), a single image, or any iterable of numpy frames
            (list, generator, ``(N, H, W, C)`` array).  An already open :class:`VideoSource`
            is returned as is.
        live: override whether the source counts as live (default: cameras and URLs are live).
        fps: frame rate for sources that have none (folders, iterables): used for
            timestamps (``index * 1000 / fps``) and for writing videos.  Ignored for video
            files, cameras and streams, which report their own.

    Returns:
        A :class:`VideoSource`; iterate it for :class:`Frame` objects and close it when done.

    Raises:
        SourceError: the source does not exist or cannot be opened (the message names it).
        InvalidTypeError: ``src`` is of an unsupported type.
        InvalidArgumentError: ``src`` is a single image array, or ``fps`` is not positive.
    """
    fps = _check_fps(fps)
    _v.optional_bool(live, "live")
    if isinstance(src, VideoSource):
        return src
    if isinstance(src, bool):
        raise InvalidTypeError("src: expected a path, URL, camera index or iterable of frames, got a bool")
    if isinstance(src, (int, np.integer)):
        if src < 0:
            raise InvalidArgumentError(f"src: camera index must be >= 0, got {src}")
        return CaptureSource(int(src), "camera", live=live)
    if isinstance(src, (str, os.PathLike)):
        text = os.fspath(src)
        if isinstance(text, bytes):
            text = os.fsdecode(text)
        if not text:
            raise InvalidArgumentError("src: empty source path")
        if _URL_RE.match(text):
            return CaptureSource(text, "url", live=live)
        path = Path(text).expanduser()
        if path.is_dir():
            files = [str(p) for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
            return ImageFolderSource(sorted(files, key=_natural_key), text, fps=fps, live=bool(live))
        if path.is_file():
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                return ImageFolderSource([str(path)], text, fps=fps, live=bool(live))
            return CaptureSource(str(path), "file", live=live)
        if text.isdigit():
            return CaptureSource(int(text), "camera", live=live)
        if _glob.has_magic(text):
            files = [p for p in _glob.glob(os.path.expanduser(text)) if os.path.isfile(p)]
            return ImageFolderSource(sorted(files, key=_natural_key), text, fps=fps, live=bool(live))
        raise SourceError(f"cannot open video source {text!r}: no such file, folder, camera index or URL")
    if isinstance(src, bytes):
        raise InvalidTypeError("src: expected a path as str or os.PathLike, got bytes")
    if isinstance(src, np.ndarray):
        if src.ndim == 3 and src.shape[2] in (3, 4) or src.ndim < 3:
            raise InvalidArgumentError(
                f"src: got a single image of shape {src.shape}; pass a list of frames or an (N, H, W, C) array"
            )
        return IterableSource(src, fps=fps, live=bool(live), name=f"<array of {src.shape[0]} frames>")
    if hasattr(src, "__iter__"):
        return IterableSource(src, fps=fps, live=bool(live))
    raise InvalidTypeError(
        f"src: expected a path, URL, camera index or iterable of frames, got {type(src).__name__}"
    )
