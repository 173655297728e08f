"""How a stream's frames get segmented: the three steps a pipeline spreads over its threads.

* :class:`RecurrentEngine` — a Segmenter whose model takes the previous frame's mask as a
  4th input channel (``info.input_prior``): whole frames, in order, on one worker, each fed
  the previous result's foreground probability.
* :class:`StagedEngine` — a :class:`mtkseg.Segmenter`: ``prepare`` (reader thread),
  ``infer`` (one interpreter per worker: the Segmenter itself, or replicas of it),
  ``finish`` (in frame order).
* :class:`RunEngine` — any object with ``run(frame[, score_filter=])``: one worker runs whole
  frames; ``prepare`` and ``finish`` pass them through.

:func:`plan_workers` picks the number of workers and interpreter threads.
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional, Tuple, Union

import numpy as np

from .. import _validate as v
from ..errors import InvalidArgumentError, InvalidTypeError
from .protocol import (FrameSegmenter, RecurrentSegmenter, ResultLike, ScoreFilter, SegmenterLike, StagedSegmenter,
                       replicas_of)

log = logging.getLogger("mtkseg.video")

__all__ = ["RunEngine", "RecurrentEngine", "StagedEngine", "check_segmenter", "make_engine", "plan_workers", "MAX_AUTO_WORKERS"]

#: Upper bound of the automatic worker count: more interpreters add memory and latency
#: for little throughput on small models.
MAX_AUTO_WORKERS = 4

def _is_staged(segmenter: object) -> bool:
    return all(callable(getattr(segmenter, name, None)) for name in ("prepare", "infer", "finish", "replicate"))


def plan_workers(segmenter: SegmenterLike, live: bool, workers: Optional[int]) -> Tuple[int, Optional[int]]:
    """``(workers, interpreter threads per worker)`` for a stream (threads None: the
    segmenter's own setting, used by the segmenter itself as the only worker).

    Raises:
        InvalidArgumentError: ``workers > 1`` in live mode or with a segmenter that cannot
            be replicated.
    """
    staged = _is_staged(segmenter)
    if workers is not None:
        workers = v.integer(workers, "workers", minimum=1, expected="an integer >= 1 or None (automatic)")
        if workers > 1 and live:
            raise InvalidArgumentError(
                "workers: live mode runs one frame at a time to keep latency low; use workers=1 (or None), "
                "or live=False to process every frame with several workers"
            )
        if workers > 1 and not staged:
            raise InvalidArgumentError(
                f"workers: {workers} workers need a mtkseg.Segmenter (prepare/infer/finish/replicate); "
                f"{type(segmenter).__name__} only runs whole frames"
            )
    threads = int(getattr(segmenter, "num_threads", 1) or 1) if staged else 1
    if workers is None:
        on_cpu = staged and str(getattr(segmenter, "delegate", "")) == "cpu"
        workers = min(threads, MAX_AUTO_WORKERS) if on_cpu and not live else 1
    if workers == 1:
        return 1, None
    return workers, max(1, threads // workers)


class RunEngine:
    """Whole frames through ``segmenter.run`` on one worker."""

    workers = 1
    whole_frames = True  # stage timings come from the results, not from the pipeline's stages

    def __init__(self, segmenter: FrameSegmenter, score_filter: Optional[ScoreFilter]) -> None:
        self._segmenter = segmenter
        self._score_filter = score_filter

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return image

    def infer(self, worker: int, prepared: np.ndarray) -> Any:
        if self._score_filter is None:
            return self._segmenter.run(prepared)
        return self._segmenter.run(prepared, score_filter=self._score_filter)

    def finish(self, inferred: Any) -> ResultLike:
        return inferred

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "1 worker (run)"


class RecurrentEngine(RunEngine):
    """Whole frames through ``segmenter.run`` on one worker, each frame's prior being the
    previous frame's foreground probability (the first frame gets the Segmenter's ``prior``)."""

    def __init__(self, segmenter: RecurrentSegmenter, score_filter: Optional[ScoreFilter]) -> None:
        super().__init__(segmenter, score_filter)
        self._previous: Optional[np.ndarray] = None

    def infer(self, worker: int, prepared: np.ndarray) -> Any:
        kwargs = {} if self._score_filter is None else {"score_filter": self._score_filter}
        result = self._segmenter.run(prepared, prior=self._previous, **kwargs)
        self._previous = self._segmenter.foreground_probability(result)
        return result

    def __repr__(self) -> str:
        return "1 worker (run, previous mask fed back)"


class StagedEngine:
    """``prepare`` → ``infer`` on one of ``workers`` interpreters → ``finish`` in order."""

    whole_frames = False

    def __init__(self, segmenter: StagedSegmenter, score_filter: Optional[ScoreFilter], workers: int,
                 threads_per_worker: Optional[int]) -> None:
        self._segmenter = segmenter
        self._score_filter = score_filter
        self.workers = workers
        self.threads_per_worker = threads_per_worker if threads_per_worker is not None else segmenter.num_threads
        self._owned: List[StagedSegmenter] = []  # replicas this engine opened (and closes)
        self._runners: List[StagedSegmenter] = [segmenter]
        if threads_per_worker is not None:  # a Segmenter keeps its replicas for the next stream
            self._runners, owned = replicas_of(segmenter, workers, threads_per_worker)
            if owned:
                self._owned = self._runners

    def prepare(self, image: np.ndarray) -> Any:
        return self._segmenter.prepare(image)

    def infer(self, worker: int, prepared: Any) -> Tuple[Any, Any]:
        return prepared, self._runners[worker].infer(prepared)

    def finish(self, inferred: Tuple[Any, Any]) -> ResultLike:
        prepared, output = inferred
        return self._segmenter.finish(prepared, output, score_filter=self._score_filter)

    def close(self) -> None:
        for runner in self._owned:
            close = getattr(runner, "close", None)
            if callable(close):
                close()
        self._runners, self._owned = [], []

    def __repr__(self) -> str:
        workers = f"{self.workers} worker{'s' if self.workers > 1 else ''}"
        delegate = str(getattr(self._segmenter, "delegate", "cpu"))
        if delegate != "cpu":  # the interpreter threads do not say how a GPU/NPU runs
            return f"{workers} on {delegate}"
        return f"{workers} x {self.threads_per_worker} thread" + ("s" if self.threads_per_worker > 1 else "")


def check_segmenter(segmenter: object) -> None:
    """Raise InvalidTypeError unless ``segmenter`` can segment frames (has ``run``)."""
    if not callable(getattr(segmenter, "run", None)):
        raise InvalidTypeError(
            f"segmenter: expected a mtkseg.Segmenter (an object with .run(frame)), got {type(segmenter).__name__}"
        )


def make_engine(segmenter: SegmenterLike, live: bool, workers: Optional[int],
                score_filter: Optional[ScoreFilter]) -> "Union[RunEngine, RecurrentEngine, StagedEngine]":
    """The engine for ``segmenter`` (see :func:`plan_workers` for ``workers``)."""
    check_segmenter(segmenter)
    info = getattr(segmenter, "info", None)
    if getattr(info, "input_prior", False) and callable(getattr(segmenter, "foreground_probability", None)):
        if workers is not None and workers != 1:
            raise InvalidArgumentError(
                f"workers: this model takes the previous frame's mask as input, so frames run one after "
                f"another on one worker; use workers=1 (or None), got {workers!r}"
            )
        log.info("stream: the model's 4th input channel takes the previous frame's mask: one worker, in order")
        return RecurrentEngine(segmenter, score_filter)  # type: ignore[arg-type]  (checked above)
    count, threads = plan_workers(segmenter, live, workers)
    if not _is_staged(segmenter):
        return RunEngine(segmenter, score_filter)
    return StagedEngine(segmenter, score_filter, count, threads)  # type: ignore[arg-type]  (_is_staged)
