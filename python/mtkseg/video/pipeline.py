"""The overlapped stream pipeline: decode, segment and consume in parallel, results in order.

Stages run in their own threads, joined by small bounded queues::

    source --(read + prepare)--> worker 1..N (infer) --(finish, in order)--> consumer

* **read** decodes the next frame and, in file mode, preprocesses it into a model-input
  array (:meth:`Segmenter.prepare`), so the inference workers only copy it in and invoke.
* **workers** each own an interpreter (:meth:`Segmenter.replicate`) and take frames round
  robin; with several of them, consecutive frames are inferred at the same time.
* **finish** turns raw outputs into results in source order (argmax/resize, temporal
  smoothing, flicker statistics), then hands them to the thread iterating the stream.

* **File mode** (default for files, folders, iterables): bounded queues of ``queue_size``
  frames give back-pressure; every frame is processed, in order, none dropped.
* **Live mode** (default for cameras and URLs): one worker; the input is a one-frame slot;
  a frame that arrives while the previous one still waits for inference replaces it and is
  counted as dropped (MediaPipe ``LIVE_STREAM`` semantics), so results stay one frame behind
  the source.  A *file* opened in live mode is paced at its own frame rate (``realtime``),
  simulating a camera.

How many workers (``workers=None``): one in live mode, for a segmenter on a GPU/NPU delegate
and for segmenter-like objects that only have ``run()``; otherwise, in file mode on the CPU,
``min(num_threads, 4)`` workers sharing the Segmenter's ``num_threads`` interpreter threads.
An interpreter with one thread uses a core better than one with several (no barriers between
threads), so on a 2-core machine two 1-thread workers out-run one 2-thread interpreter (see
bench/RESULTS.md).  Each frame then takes longer (higher latency), which file mode does not
mind.

Decoding (OpenCV), inference (LiteRT) and the native ops release the GIL, so the stages
really overlap.  A Segmenter is only ever invoked by one worker thread at a time.

Threads never outlive the stream: closing it (``close()``, leaving a ``with`` block, breaking
out of a ``for`` loop over a temporary stream, garbage collection) stops and joins them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from typing import Any, List, Optional, Tuple, Union

import numpy as np

from ..errors import InvalidArgumentError, MtksegError, StreamError
from .engines import check_segmenter, make_engine
from .options import DEFAULT_QUEUE_SIZE, StreamOptions
from .protocol import SegmenterLike
from .smoothing import TemporalSmoother, flicker, make_smoother
from .sources import NETWORK_TIMEOUT_MS, Frame, SourceLike, VideoSource, open_source
from .stats import StreamStats

__all__ = ["VideoStream", "stream", "DEFAULT_QUEUE_SIZE"]

log = logging.getLogger(__name__)

_POLL_S = 0.05
_END = object()  # end-of-stream marker passed down the queues


class _Failure:
    """An exception raised by the infer thread, delivered in order to the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _LatestSlot:
    """A one-item mailbox: ``put`` replaces an unclaimed item (returns how many it dropped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._has_item = False
        self._closed = False

    def put(self, item: Any) -> int:
        with self._cond:
            dropped = int(self._has_item)
            self._item, self._has_item = item, True
            self._cond.notify()
            return dropped

    def close(self) -> None:
        """No more items: ``get`` returns the pending one, then ``_END``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get(self, timeout: float) -> Any:
        """The pending item, ``_END`` once closed and empty, or raises ``queue.Empty``."""
        with self._cond:
            if not self._has_item and not self._closed:
                self._cond.wait(timeout)
            if self._has_item:
                item, self._item, self._has_item = self._item, None, False
                return item
            if self._closed:
                return _END
            raise queue.Empty


class VideoStream:
    """Iterator of ``(Frame, SegmentationResult)`` over a source, computed in background threads.

    Create it with :func:`stream` or ``Segmenter.stream``.  Iterate it once; read
    :attr:`stats` at any time.  Use it as a context manager (or call :meth:`close`) so the
    threads and the source are released even when the loop body raises.

    A mid-stream failure of the source (truncated file, unplugged camera) raises
    :class:`~mtkseg.errors.StreamError` from ``next()`` *after* every frame processed
    before it; an error of the segmenter is raised (as is) in the position of the frame
    that caused it.  Either way the stream is closed and :attr:`StreamStats.error` set.
    """

    def __init__(self, segmenter: SegmenterLike, source: Union[SourceLike, VideoSource], *,
                 options: Optional[StreamOptions] = None, **kwargs: Any) -> None:
        check_segmenter(segmenter)  # before opening the source
        opts = StreamOptions.from_kwargs(options, **kwargs)
        self.options = opts
        live, realtime, fps, workers = opts.live, opts.realtime, opts.fps, opts.workers
        self._every, self._max_frames, self._queue_size = opts.every, opts.max_frames, opts.queue_size
        self._smoother = make_smoother(opts.smoothing, momentum=opts.ema_momentum)
        self.segmenter = segmenter
        self.source: VideoSource = open_source(source, live=live, fps=fps)
        self.live = self.source.live if live is None else live
        stored = self.source.kind in ("file", "images")  # media that would otherwise be read as fast as it decodes
        self.realtime = (self.live and stored and self.source.fps is not None) if realtime is None else realtime
        if self.realtime and self.source.fps is None:
            self.source.close()
            raise InvalidArgumentError(f"realtime: {self.source.name} has no frame rate to pace by; pass fps=")
        try:
            score_filter = self._smoother.score_filter if self._smoother is not None else None
            self._engine = make_engine(segmenter, self.live, workers, score_filter)
        except BaseException:
            self.source.close()
            raise
        self.stats = StreamStats(self.source.name, self.live)
        self.stats.workers = repr(self._engine)

        self._abort = threading.Event()  # stop everything now (close)
        self._stop_reading = threading.Event()  # stop taking new frames, finish those in flight
        n = self._engine.workers
        per_worker = max(1, -(-self._queue_size // n))
        self._in: List[Union[queue.Queue, _LatestSlot]] = (
            [_LatestSlot()] if self.live else [queue.Queue(per_worker) for _ in range(n)])
        self._mid: List[queue.Queue] = [queue.Queue(1) for _ in range(n)]
        self._out: queue.Queue = queue.Queue(1 if self.live else self._queue_size)
        self._reader_error: Optional[BaseException] = None
        self._threads: Tuple[threading.Thread, ...] = ()
        self._started = False
        self._closed = False

    # -- public API ---------------------------------------------------------------------
    @property
    def smoother(self) -> Optional[TemporalSmoother]:
        """The temporal smoother in use, or None."""
        return self._smoother

    def __iter__(self) -> "VideoStream":
        return self

    def __next__(self) -> Tuple[Frame, Any]:
        if self._closed:
            raise StopIteration
        if not self._started:
            self._start()
        item = self._get_result()  # a KeyboardInterrupt here leaves the stream open for stop()/drain
        if item is _END:
            error = self._reader_error
            self._shutdown()
            if error is not None:
                exc = error if isinstance(error, MtksegError) else StreamError(
                    f"{self.source.name}: reading failed after {self.stats.frames_read} frames: "
                    f"{type(error).__name__}: {error}")
                if exc is not error:
                    exc.__cause__ = error
                self.stats.error = exc
                raise exc
            raise StopIteration
        if isinstance(item, _Failure):
            self.stats.error = item.exc
            self._shutdown()
            raise item.exc
        frame, result, t_decoded = item
        self.stats.frames_processed += 1
        self.stats.record("latency", (time.perf_counter() - t_decoded) * 1000.0)
        return frame, result

    def stop(self) -> None:
        """Stop reading new frames; the frames already read are still processed and
        delivered, then iteration ends.  Use :meth:`close` to abandon them."""
        self._stop_reading.set()

    def close(self) -> None:
        """Stop at once: signal the threads, wait for them, release the source.  Idempotent."""
        if self._closed:
            return
        self._abort.set()
        self._stop_reading.set()
        self._shutdown()

    @property
    def closed(self) -> bool:
        """True once the stream has ended or was closed (its threads are gone)."""
        return self._closed

    def __enter__(self) -> "VideoStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # never raise from a finaliser
            pass

    def __repr__(self) -> str:
        mode = "live" if self.live else "file"
        return (f"VideoStream({self.source.name!r}, {mode} mode, {self._engine!r}, every={self._every}, "
                f"smoothing={self._smoother!r})")

    # -- internals ----------------------------------------------------------------------
    def _start(self) -> None:
        self._started = True
        self.stats.start()
        # The threads get the pieces they need, never ``self``: a stream nobody references
        # any more is collected, and its finaliser stops them.
        state = _State(self)
        threads = [threading.Thread(target=_read_loop, args=(state,), name="mtkseg-video-read", daemon=True)]
        threads += [threading.Thread(target=_infer_loop, args=(state, i), name=f"mtkseg-video-infer-{i}", daemon=True)
                    for i in range(self._engine.workers)]
        threads.append(threading.Thread(target=_finish_loop, args=(state,), name="mtkseg-video-finish", daemon=True))
        self._threads = tuple(threads)
        for thread in threads:
            thread.start()

    def _get_result(self) -> Any:
        while True:
            try:
                return self._out.get(timeout=_POLL_S)
            except queue.Empty:
                if not any(t.is_alive() for t in self._threads):
                    try:
                        return self._out.get_nowait()
                    except queue.Empty:
                        return _END

    def _shutdown(self) -> None:
        """Join the threads (they exit on their own at the end, or on ``_abort``)."""
        if self._closed:
            return
        self._closed = True
        self._abort.set()
        current = threading.current_thread()
        timeout = NETWORK_TIMEOUT_MS / 1000.0 + 2.0
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout)
                if thread.is_alive():  # pragma: no cover - a source blocked beyond its timeout
                    log.warning("%s: thread %s did not stop within %.0f s", self.source.name, thread.name, timeout)
        if not self._started:
            self.source.close()
        self._engine.close()
        self.stats.frames_skipped = self.source.skipped
        self.stats.finish()


class _State:
    """What the worker threads share (deliberately not the VideoStream itself)."""

    def __init__(self, s: VideoStream) -> None:
        self.engine = s._engine
        self.source = s.source
        self.smoother = s._smoother
        self.stats = s.stats
        self.live = s.live
        self.realtime = s.realtime
        self.every = s._every
        self.max_frames = s._max_frames
        self.inqs = s._in
        self.midqs = s._mid
        self.outq = s._out
        self.abort = s._abort
        self.stop_reading = s._stop_reading
        self.set_reader_error = _ErrorBox(s)


class _ErrorBox:
    """Hands the reader's exception to the stream without a strong reference to it."""

    def __init__(self, s: VideoStream) -> None:
        self._ref = weakref.ref(s)

    def __call__(self, exc: BaseException) -> None:
        s = self._ref()
        if s is not None:
            s._reader_error = exc


def _put(q: queue.Queue, item: Any, abort: threading.Event) -> bool:
    """Blocking put that gives up when ``abort`` is set.  Returns True if the item went in."""
    while not abort.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _get(q: Union[queue.Queue, _LatestSlot], abort: threading.Event) -> Any:
    """Blocking get that gives up when ``abort`` is set (returns ``_END`` then)."""
    while not abort.is_set():
        try:
            return q.get(timeout=_POLL_S)
        except queue.Empty:
            continue
    return _END


def _timed(st: _State, stage: str, step: Any, *args: Any) -> Any:
    """``step(*args)``, recording its time as ``stage`` unless the results carry their own."""
    t0 = time.perf_counter()
    out = step(*args)
    if not st.engine.whole_frames:
        st.stats.record(stage, (time.perf_counter() - t0) * 1000.0)
    return out


def _read_loop(st: _State) -> None:
    """Decode frames; in file mode also prepare them and deal them round robin to the workers."""
    source, stats, engine = st.source, st.stats, st.engine
    workers = len(st.inqs)
    submitted = 0
    t_origin: Optional[float] = None
    try:
        frames = source.frames(st.every)
        while not st.stop_reading.is_set():
            t0 = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                break
            t1 = time.perf_counter()
            stats.record("read", (t1 - t0) * 1000.0)
            stats.frames_read += 1
            stats.frames_skipped = source.skipped
            stats.frames_corrupt = source.corrupt
            if st.realtime:  # pace a file like a camera: frame k is due at t_origin + ts_k
                if t_origin is None:
                    t_origin = t1 - frame.timestamp_ms / 1000.0
                delay = t_origin + frame.timestamp_ms / 1000.0 - time.perf_counter()
                if delay > 0 and st.abort.wait(delay):
                    break
            if st.live:  # prepared by the worker: only for the frames it does not drop
                stats.frames_dropped += st.inqs[0].put((frame, frame.image, time.perf_counter()))
                continue
            t_decoded = time.perf_counter()
            failed = False
            try:
                payload: Any = _timed(st, "pre", engine.prepare, frame.image)
            except Exception as exc:  # a bad frame: reported in its place, after the frames before it
                payload, failed = _Failure(exc), True
            if not _put(st.inqs[submitted % workers], (frame, payload, t_decoded), st.abort):
                break
            submitted += 1
            if failed or (st.max_frames is not None and submitted >= st.max_frames):
                break
    except BaseException as exc:  # reported to the consumer after the frames before it
        st.set_reader_error(exc)
    finally:
        stats.frames_skipped = source.skipped
        stats.frames_corrupt = source.corrupt
        source.close()  # closed by the thread that reads it: no concurrent access to the capture
        if st.live:
            st.inqs[0].close()
        else:
            for q in st.inqs:
                if not _put(q, _END, st.abort):
                    break


def _infer_loop(st: _State, worker: int) -> None:
    """Worker ``worker``: infer the frames dealt to it, in the order it got them."""
    engine = st.engine
    inq, midq = st.inqs[worker], st.midqs[worker]
    try:
        while True:
            item = _get(inq, st.abort)
            if item is _END:
                break
            frame, payload, t_decoded = item
            if not isinstance(payload, _Failure):
                try:
                    if st.live:
                        payload = _timed(st, "pre", engine.prepare, payload)
                    payload = _timed(st, "infer", engine.infer, worker, payload)
                except Exception as exc:
                    payload = _Failure(exc)
            if not _put(midq, (frame, payload, t_decoded), st.abort):
                return
            if isinstance(payload, _Failure):
                st.stop_reading.set()
                return  # the finisher stops at this frame
    finally:
        if not st.abort.is_set():
            _put(midq, _END, st.abort)


def _finish_loop(st: _State) -> None:
    """Collect the workers' outputs in frame order, finish them, hand them to the consumer."""
    engine, stats, smoother = st.engine, st.stats, st.smoother
    mask_step = smoother is not None and type(smoother).smooth_mask is not TemporalSmoother.smooth_mask
    previous: Optional[np.ndarray] = None
    processed = 0
    try:
        while True:
            item = _get(st.midqs[processed % len(st.midqs)], st.abort)
            if item is _END:
                break
            frame, payload, t_decoded = item
            if isinstance(payload, _Failure):
                st.stop_reading.set()
                _put(st.outq, payload, st.abort)
                return
            try:
                result = _timed(st, "post", engine.finish, payload)
                if engine.whole_frames:
                    timings = getattr(result, "timings", None) or {}
                    for stage in ("pre", "infer", "post"):
                        if stage in timings:
                            stats.record(stage, timings[stage])
                mask = result.mask
                if mask_step:
                    t0 = time.perf_counter()
                    smoothed = smoother.smooth_mask(mask)  # type: ignore[union-attr]
                    if smoothed is not mask:
                        np.copyto(mask, smoothed)
                    stats.record("smooth", (time.perf_counter() - t0) * 1000.0)
                if previous is not None and previous.shape == mask.shape:
                    stats.add_flicker(flicker(previous, mask))
                previous = mask.copy()
            except Exception as exc:
                st.stop_reading.set()
                _put(st.outq, _Failure(exc), st.abort)
                return
            if not _put(st.outq, (frame, result, t_decoded), st.abort):
                return
            processed += 1
            if st.max_frames is not None and processed >= st.max_frames:
                st.stop_reading.set()
                break
    finally:
        if not st.abort.is_set():
            st.stop_reading.set()
            for q in (*st.inqs, *st.midqs):  # unblock a reader or worker waiting on a full queue
                _drain(q)
            _put(st.outq, _END, st.abort)


def _drain(q: Union[queue.Queue, _LatestSlot]) -> None:
    if isinstance(q, _LatestSlot):
        return
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def stream(segmenter: SegmenterLike, source: Union[SourceLike, VideoSource], *,
           options: Optional[StreamOptions] = None, **kwargs: Any) -> VideoStream:
    """Segment a video stream: an iterator of ``(Frame, SegmentationResult)`` in source order.

    Args:
        segmenter: a :class:`mtkseg.Segmenter` (anything with ``run(frame)`` returning a
            result with ``.mask``; ``run(frame, score_filter=...)`` for ``smoothing="ema"``).
        source: anything :func:`~mtkseg.video.open_source` accepts (file, camera index, URL,
            image folder or glob, iterable of frames) or an open source (the stream closes it).
        options: a :class:`~mtkseg.StreamOptions`; keyword arguments are its fields (applied
            on top of ``options`` when both are given):

        live: live mode (process only the newest frame, count dropped ones); default True
            for cameras and URLs, False otherwise.
        smoothing: None, ``"ema"`` (score EMA in the native core), ``"mode3"`` (majority of
            the last 3 masks) or a :class:`~mtkseg.video.TemporalSmoother`.
        ema_momentum: EMA factor for ``smoothing="ema"`` (default 0.6).
        every: process every N-th frame only (frame indices 0, N, 2N, ...).
        max_frames: stop after this many processed frames.
        queue_size: frames buffered between stages in file mode.
        realtime: pace reading at the source frame rate; default True for a video file (or
            an image folder with ``fps``) read in live mode, to simulate a camera; False otherwise.
        fps: frame rate of sources that have none (folders, iterables).
        workers: interpreters inferring consecutive frames at the same time (file mode, a
            :class:`mtkseg.Segmenter` only); None picks them (see the module docs): on the
            CPU, ``min(num_threads, 4)`` replicas sharing the Segmenter's threads.  Each
            worker holds its own interpreter and tensor arena: ``workers=1`` saves memory
            with big models.

    Returns:
        A :class:`VideoStream`; its ``stats`` attribute is a live :class:`StreamStats`.
        Close it (or use ``with``) when you stop early.
    """
    return VideoStream(segmenter, source, options=options, **kwargs)
