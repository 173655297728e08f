"""What the video pipeline needs of a segmenter: the typed seam between :mod:`mtkseg.video`
and :class:`mtkseg.Segmenter` (which satisfies both protocols; so can a test double).

* :class:`FrameSegmenter` — whole frames: ``run(frame)`` returning a result with ``.mask``
  (and ``run(frame, score_filter=...)`` for ``smoothing="ema"``).  One worker.
* :class:`StagedSegmenter` — the three steps of ``run`` (``prepare`` / ``infer`` /
  ``finish``) plus ``replicate``, so a pipeline can spread a frame over threads and infer
  consecutive frames on several interpreters at once.

The pipeline calls nothing else (no private attribute): ``num_threads``, ``delegate`` and
``info.input_prior`` are read when present, ``replicas(count, num_threads)`` is used when
present (a Segmenter keeps its replicas for the next stream) and ``replicate`` otherwise.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Protocol, runtime_checkable

import numpy as np

__all__ = ["ResultLike", "FrameSegmenter", "StagedSegmenter", "RecurrentSegmenter", "SegmenterLike", "ScoreFilter"]

#: ``f(scores, scale, zero_point) -> scores`` (see :meth:`mtkseg.Segmenter.run`).
ScoreFilter = Callable[[np.ndarray, float, int], np.ndarray]


@runtime_checkable
class ResultLike(Protocol):
    """A segmentation result as the pipeline reads it (``timings`` is read when present)."""

    @property
    def mask(self) -> np.ndarray: ...


@runtime_checkable
class FrameSegmenter(Protocol):
    """Anything that segments one whole frame."""

    def run(self, frame: Any, *, score_filter: Optional[ScoreFilter] = None) -> ResultLike: ...


@runtime_checkable
class StagedSegmenter(FrameSegmenter, Protocol):
    """A segmenter whose ``run`` is split in three steps that may run on different threads
    (:meth:`mtkseg.Segmenter.prepare`, :meth:`~mtkseg.Segmenter.infer`,
    :meth:`~mtkseg.Segmenter.finish`) and that can open replicas of itself."""

    @property
    def num_threads(self) -> int: ...

    @property
    def delegate(self) -> str: ...

    def prepare(self, frame: Any) -> Any: ...

    def infer(self, prepared: Any) -> Any: ...

    def finish(self, prepared: Any, output: Any, *, score_filter: Optional[ScoreFilter] = None) -> ResultLike: ...

    def replicate(self, *, num_threads: Optional[int] = None) -> "StagedSegmenter": ...

    def close(self) -> None: ...


@runtime_checkable
class RecurrentSegmenter(FrameSegmenter, Protocol):
    """A segmenter whose model takes the previous frame's mask as a 4th input channel
    (``info.input_prior``): ``run(frame, prior=...)`` and ``foreground_probability(result)``."""

    def run(self, frame: Any, *, score_filter: Optional[ScoreFilter] = None,  # type: ignore[override]
            prior: Any = None) -> ResultLike: ...

    def foreground_probability(self, result: Any) -> np.ndarray: ...


#: What :func:`mtkseg.video.stream` accepts.
SegmenterLike = FrameSegmenter


def replicas_of(segmenter: StagedSegmenter, count: int, num_threads: int) -> "tuple[List[StagedSegmenter], bool]":
    """``count`` segmenters with ``num_threads`` threads each and whether the caller owns
    (must close) them: the segmenter's kept ``replicas`` when it has them, else new ones."""
    keep = getattr(segmenter, "replicas", None)
    if callable(keep):
        return list(keep(count, num_threads)), False
    return [segmenter.replicate(num_threads=num_threads) for _ in range(count)], True
