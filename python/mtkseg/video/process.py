"""Run a whole stream into sinks: :func:`process`."""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Callable, Optional, Sequence, Union

from ..errors import InvalidArgumentError, MtksegError
from .options import StreamOptions
from .protocol import SegmenterLike
from .pipeline import VideoStream
from .sinks import Sink, as_sinks
from .sources import Frame, SourceLike, VideoSource
from .stats import StreamStats

__all__ = ["process"]

log = logging.getLogger(__name__)


def _progress_total(s: VideoStream, max_frames: Optional[int], every: int) -> Optional[int]:
    if s.live:
        return max_frames
    total = math.ceil(s.source.frame_count / every) if s.source.frame_count is not None else None
    if max_frames is not None:
        total = max_frames if total is None else min(total, max_frames)
    return total


def process(
    source: Union[SourceLike, VideoSource],
    segmenter: SegmenterLike,
    sink: Union[None, str, os.PathLike, Sink, Sequence[Any]] = None,
    callback: Optional[Callable[[Frame, Any], Any]] = None,
    *,
    progress: bool = False,
    on_error: str = "raise",
    options: Optional[StreamOptions] = None,
    **stream_kw: Any,
) -> StreamStats:
    """Segment a whole stream, writing every result to the sinks; returns its statistics.

    Args:
        source: anything :func:`~mtkseg.video.open_source` accepts.
        segmenter: a :class:`mtkseg.Segmenter`.
        sink: a :class:`~mtkseg.video.Sink`, a path (video extension → annotated video,
            otherwise a folder of mask PNGs) or a list of them.
        callback: ``fn(frame, result)`` called for each processed frame, after the sinks.
        progress: show a tqdm progress bar (frames, frames per second, dropped frames in live mode).
        on_error: what to do when the stream fails part-way (truncated file, unplugged
            camera, segmenter error): ``"raise"`` (default) re-raises the error, ``"warn"``
            logs it and returns the statistics with :attr:`StreamStats.error` set.  Either way
            every frame processed before the failure is written and the sinks are finalised
            first; the exception carries the statistics as ``exc.stats``.
        options: the stream's :class:`~mtkseg.StreamOptions`.
        **stream_kw: its fields as keyword arguments (``live``, ``smoothing``, ``every``,
            ``max_frames``, ``workers``...), applied on top of ``options``.

    Ctrl-C (KeyboardInterrupt) stops reading, writes the frames already in flight, finalises
    the sinks and re-raises KeyboardInterrupt (with ``.stats``); a second Ctrl-C abandons the
    frames in flight.
    """
    if on_error not in ("raise", "warn"):
        raise InvalidArgumentError(f"on_error: expected 'raise' or 'warn', got {on_error!r}")
    sinks = as_sinks(sink, callback)
    stream = VideoStream(segmenter, source, options=options, **stream_kw)
    stats = stream.stats
    bar = None
    failure: Optional[BaseException] = None
    try:  # configuration errors (e.g. no fps for a video sink) raise whatever ``on_error`` says
        for s in sinks:
            s.start(stream.source)
    except BaseException:
        stream.close()
        for s in sinks:
            s.close()
        raise
    try:
        if progress:
            from tqdm import tqdm

            total = _progress_total(stream, stream_kw.get("max_frames"), stream_kw.get("every", 1))
            # One speed figure: tqdm's own rate (frames/s) is the only one shown.
            bar = tqdm(total=total, unit="frame", desc=os.path.basename(stream.source.name) or stream.source.name,
                       dynamic_ncols=True, leave=True)

        def consume() -> None:
            last_refresh = 0.0
            for frame, result in stream:
                t0 = time.perf_counter()
                for s in sinks:
                    s.write(frame, result)
                t1 = time.perf_counter()
                stats.record("write", (t1 - t0) * 1000.0)
                if bar is not None:
                    bar.update(1)
                    if stats.live and t1 - last_refresh > 0.5:
                        last_refresh = t1
                        bar.set_postfix(dropped=stats.frames_dropped, refresh=False)

        try:
            consume()
        except KeyboardInterrupt as exc:
            stats.interrupted = True
            failure = exc
            stream.stop()  # finish and write the frames already read
            try:
                consume()
            except KeyboardInterrupt:
                pass  # a second Ctrl-C: abandon the frames in flight
            except MtksegError as later:
                stats.error = later
    except MtksegError as exc:
        failure = exc
    finally:
        stream.close()
        close_errors = []
        for s in sinks:
            try:
                s.close()
            except Exception as exc:  # finalise every sink even if one fails
                close_errors.append(exc)
        if bar is not None:
            if stats.live:
                bar.set_postfix(dropped=stats.frames_dropped, refresh=False)
            bar.close()
        stats.codec = ", ".join(c for c in (getattr(s, "codec", None) for s in sinks) if c)
        if close_errors and failure is None:
            failure = close_errors.pop(0)
        for exc in close_errors:  # not the one reported: do not lose them silently
            log.error("closing a sink failed: %s: %s", type(exc).__name__, exc)
    if failure is None:
        return stats
    if not isinstance(failure, KeyboardInterrupt) and stats.error is None:
        stats.error = failure
    try:
        failure.stats = stats  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exceptions with __slots__
        pass
    if isinstance(failure, KeyboardInterrupt) or on_error == "raise":
        raise failure
    log.warning("stream ended early: %s", failure)
    return stats
