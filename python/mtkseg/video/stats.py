"""Stream statistics: frame counts, throughput and per-stage latency percentiles."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Deque, Dict, Optional

import numpy as np

__all__ = ["StreamStats", "STAGES", "WINDOW"]

#: Stages timed by the pipeline, in milliseconds per frame.
#:   read: decoding one frame (source thread); pre / infer / post: the Segmenter's own
#:   timings; smooth: temporal smoothing of the mask; write: sinks / the consumer's work
#:   (recorded by :func:`mtkseg.video.process`); latency: from the frame being decoded to
#:   its result being handed to the consumer.
STAGES = ("read", "pre", "infer", "post", "smooth", "write", "latency")
#: Percentiles are computed over the most recent ``WINDOW`` samples of each stage.
WINDOW = 100_000


class StreamStats:
    """Counters and timings of one stream, safe to read while the stream runs.

    Attributes:
        source: name of the source.
        live: whether the stream ran in live mode.
        workers: how frames were inferred, e.g. ``"2 workers x 1 thread"`` (interpreters x
            threads each; ``"1 worker (run)"`` for a segmenter that only has ``run()``).
        frames_read: frames decoded from the source.
        frames_skipped: frames passed over because of ``every=N``.
        frames_dropped: frames decoded but discarded because a newer one arrived before
            inference was free (live mode only).
        frames_processed: frames segmented and delivered.
        frames_corrupt: undecodable frames of a video file that were skipped.
        codec: what encoded the video output(s), e.g. ``"h264 (PyAV libx264, yuv420p)"``, or
            ``""`` without a video sink (set by :func:`mtkseg.video.process`).
        flicker: mean share of mask pixels whose class changed between consecutive
            processed frames (0..1), or None before two frames.
        error: the exception that ended the stream early, if any (a truncated file, an
            unplugged camera, a failing segmenter).
        interrupted: True when the stream was stopped by KeyboardInterrupt.
    """

    def __init__(self, source: str = "", live: bool = False) -> None:
        self.source = source
        self.live = live
        self.workers = ""
        self.frames_read = 0
        self.frames_skipped = 0
        self.frames_dropped = 0
        self.frames_processed = 0
        self.frames_corrupt = 0
        self.codec = ""
        self.error: Optional[BaseException] = None
        self.interrupted = False
        self._flicker_sum = 0.0
        self._flicker_n = 0
        self._samples: Dict[str, Deque[float]] = {s: deque(maxlen=WINDOW) for s in STAGES}
        self._lock = threading.Lock()
        self._t_start: Optional[float] = None
        self._t_end: Optional[float] = None

    # -- recording (called by the pipeline threads) -------------------------------------
    def start(self) -> None:
        """Mark the start of the stream (for :attr:`elapsed_s` and :attr:`fps`)."""
        self._t_start = time.perf_counter()
        self._t_end = None

    def finish(self) -> None:
        """Mark the end of the stream; later reads of :attr:`fps` no longer change."""
        if self._t_end is None:
            self._t_end = time.perf_counter()

    def record(self, stage: str, ms: float) -> None:
        """Add one timing sample (milliseconds) for ``stage`` (any name; see :data:`STAGES`)."""
        samples = self._samples.get(stage)
        if samples is None:
            with self._lock:
                samples = self._samples.setdefault(stage, deque(maxlen=WINDOW))
        samples.append(float(ms))

    def add_flicker(self, share: float) -> None:
        """Add the changed-pixel share between two consecutive masks."""
        with self._lock:
            self._flicker_sum += float(share)
            self._flicker_n += 1

    # -- reading ------------------------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        """Seconds from :meth:`start` to :meth:`finish` (or to now while running)."""
        if self._t_start is None:
            return 0.0
        end = self._t_end if self._t_end is not None else time.perf_counter()
        return max(0.0, end - self._t_start)

    @property
    def fps(self) -> float:
        """Processed frames per second of wall time."""
        elapsed = self.elapsed_s
        return self.frames_processed / elapsed if elapsed > 0 else 0.0

    @property
    def flicker(self) -> Optional[float]:
        with self._lock:
            return self._flicker_sum / self._flicker_n if self._flicker_n else None

    def samples(self, stage: str) -> np.ndarray:
        """The recorded samples of ``stage`` (ms) as a float64 array (empty if none)."""
        samples = self._samples.get(stage)
        return np.array(list(samples) if samples else [], dtype=np.float64)

    def percentiles(self, stage: str, q=(50, 90, 99)) -> Optional[Dict[str, float]]:
        """``{"p50": ms, "p90": ms, "p99": ms}`` for ``stage``, or None without samples."""
        values = self.samples(stage)
        if values.size == 0:
            return None
        return {f"p{int(p)}": float(v) for p, v in zip(q, np.percentile(values, q))}

    def latency(self) -> Dict[str, Dict[str, float]]:
        """Percentiles of every stage that has samples."""
        out = {}
        for stage in list(self._samples):
            pct = self.percentiles(stage)
            if pct is not None:
                out[stage] = pct
        return out

    def as_dict(self) -> dict:
        """A JSON-friendly snapshot."""
        return {
            "source": self.source,
            "live": self.live,
            "workers": self.workers,
            "frames_read": self.frames_read,
            "frames_skipped": self.frames_skipped,
            "frames_dropped": self.frames_dropped,
            "frames_processed": self.frames_processed,
            "frames_corrupt": self.frames_corrupt,
            "codec": self.codec,
            "elapsed_s": round(self.elapsed_s, 4),
            "fps": round(self.fps, 3),
            "flicker": None if self.flicker is None else round(self.flicker, 6),
            "latency_ms": {k: {p: round(v, 3) for p, v in d.items()} for k, d in self.latency().items()},
            "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}",
            "interrupted": self.interrupted,
        }

    def summary(self) -> str:
        """A few human-readable lines: counts, fps, flicker and a latency table."""
        lines = [
            f"{self.source}: {self.frames_processed} frames processed in {self.elapsed_s:.2f} s "
            f"({self.fps:.1f} fps, {'live' if self.live else 'file'} mode"
            f"{', ' + self.workers if self.workers else ''}); read {self.frames_read}, "
            f"skipped {self.frames_skipped}, dropped {self.frames_dropped}"
            + (f", corrupt {self.frames_corrupt} (undecodable, skipped)" if self.frames_corrupt else "")
        ]
        if self.codec:
            lines.append(f"video codec: {self.codec}")
        if self.flicker is not None:
            lines.append(f"flicker: {100 * self.flicker:.2f} % of pixels change class between consecutive frames")
        table = self.latency()
        if table:
            lines.append("stage        p50 ms   p90 ms   p99 ms")
            for stage, pct in table.items():
                lines.append(f"{stage:<10} {pct['p50']:8.2f} {pct['p90']:8.2f} {pct['p99']:8.2f}")
        if self.interrupted:
            lines.append("interrupted (Ctrl-C)")
        if self.error is not None:
            lines.append(f"ended early: {type(self.error).__name__}: {self.error}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"StreamStats(read={self.frames_read}, processed={self.frames_processed}, "
                f"dropped={self.frames_dropped}, skipped={self.frames_skipped}, fps={self.fps:.2f})")
