"""The callable classes Ray Data runs as actors: each builds one :class:`~mtkseg.Segmenter` in
``__init__`` (interpreters do not pickle: the model path or bytes and the options travel, the
interpreter is opened where it runs) and then segments the batches it is handed.

No Ray import here: Ray calls these classes, they never call Ray.  Batches arrive and leave
as ``pyarrow.Table`` (pyarrow comes with Ray Data).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..errors import InvalidTypeError
from ..options import SegmenterOptions

__all__ = ["SegmentActor", "EvalActor", "result_schema", "share_columns", "as_options", "options_with_threads"]

ModelArg = Union[str, bytes]
#: The outputs a run can write per frame: what -> file suffix (the names of ``mtkseg run``).
OUTPUT_SUFFIXES = {"mask": "_mask.png", "overlay": "_overlay.png", "color": "_color.png"}
TIMING_COLUMNS = ("decode_ms", "pre_ms", "infer_ms", "post_ms", "write_ms")


def share_columns(class_names: Sequence[str]) -> List[str]:
    """Column names of the per-class pixel shares: ``share_<class name>`` (``share_<i>_<name>``
    when names repeat)."""
    names = [str(n) for n in class_names]
    if len(set(names)) == len(names):
        return [f"share_{n}" for n in names]
    return [f"share_{i}_{n}" for i, n in enumerate(names)]


def result_schema(class_names: Sequence[str]) -> Any:
    """The ``pyarrow`` schema of the per-frame result table (see :func:`mtkseg.distributed.segment`)."""
    import pyarrow as pa

    fields = [("item", pa.int64()), ("source", pa.string()), ("frame", pa.int64()), ("name", pa.string()),
              ("height", pa.int32()), ("width", pa.int32()), ("error", pa.string()), ("worker", pa.string()),
              ("mask_path", pa.string()), ("overlay_path", pa.string()), ("color_path", pa.string())]
    fields += [(c, pa.float64()) for c in TIMING_COLUMNS]
    fields += [(c, pa.float64()) for c in share_columns(class_names)]
    return pa.schema(fields)


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _open(model: ModelArg, options: SegmenterOptions) -> Any:
    from .. import ops
    from ..segmenter import Segmenter

    if not isinstance(options, SegmenterOptions):
        raise InvalidTypeError(f"options: expected a mtkseg.SegmenterOptions, got {type(options).__name__}")
    if options.num_threads:
        ops.set_num_threads(options.num_threads)  # the native pre/post pool, not one thread per core of the node
    return Segmenter(model, options=options)


class SegmentActor:
    """Segment work rows (images, or frame ranges of videos) and write their outputs.

    Args:
        model: model path (on storage every node sees) or its bytes.
        options: the :class:`~mtkseg.SegmenterOptions`, passed whole (it pickles;
            ``num_threads`` = the actor's CPUs).
        out_dir: folder for ``<name>_mask.png`` (and ``_overlay.png``/``_color.png``).
        outputs: which of ``"mask"``, ``"overlay"``, ``"color"`` to write.
        alpha: overlay opacity; ``legend``: draw the class legend on overlays and colour masks.

    Outputs are checked on the driver before the run (existing files, inputs, links); actors
    then replace what an attempt killed half-way left behind, so a retried batch writes each
    file once more and the table holds each frame once.
    """

    def __init__(self, model: ModelArg, options: SegmenterOptions, out_dir: str,
                 outputs: Sequence[str] = ("mask",), alpha: float = 0.5, legend: bool = False) -> None:
        self._seg = _open(model, options)
        self._rgb = options.color == "rgb"
        self._out = Path(out_dir)
        self._outputs = tuple(outputs)
        self._alpha = float(alpha)
        self._legend = bool(legend)
        self._worker = _worker_id()
        self._schema = result_schema(self._seg.class_names)
        self._shares = share_columns(self._seg.class_names)

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        rows: List[dict] = []
        for work in batch.to_pylist():
            if work["kind"] == "video":
                rows.extend(self._video(work))
            else:
                rows.append(self._segment_one(work, work["path"], -1, work["name"], 0.0))
        return pa.Table.from_pylist(rows, schema=self._schema)

    # -- one frame ---------------------------------------------------------------------

    def _row(self, work: Mapping[str, Any], frame: int, **values: Any) -> dict:
        row = {"item": work["item"], "source": work["path"], "frame": frame, "name": None, "height": None,
               "width": None, "error": None, "worker": self._worker, "mask_path": None, "overlay_path": None,
               "color_path": None}
        row.update({c: float("nan") for c in TIMING_COLUMNS + tuple(self._shares)})
        row.update(values)
        return row

    def _segment_one(self, work: Mapping[str, Any], frame: Any, index: int, name: str, decode_ms: float) -> dict:
        """Segment one image (a path) or decoded frame and write its outputs; an error becomes
        the row's ``error`` (with the source path), never an exception that loses the batch."""
        try:
            t0 = time.perf_counter()
            result = self._seg.run(frame)
            run_ms = (time.perf_counter() - t0) * 1e3
            t = result.timings
            if isinstance(frame, str):  # decoded inside run(); what is not pre/infer/post is the decode
                decode_ms = max(0.0, run_ms - t["pre"] - t["infer"] - t["post"])
            t1 = time.perf_counter()
            paths = {}
            for what in self._outputs:
                extra = {"legend": True} if self._legend and what != "mask" else {}
                paths[f"{what}_path"] = os.fspath(result.save(self._out / f"{name}{OUTPUT_SUFFIXES[what]}", what,
                                                              alpha=self._alpha, overwrite=True, **extra))
            write_ms = (time.perf_counter() - t1) * 1e3
            fractions = result.class_fractions()
            shares = {c: float(fractions.get(n, 0.0)) for c, n in zip(self._shares, self._seg.class_names)}
            return self._row(work, index, name=name, height=int(result.shape[0]), width=int(result.shape[1]),
                             decode_ms=decode_ms, pre_ms=t["pre"], infer_ms=t["infer"], post_ms=t["post"],
                             write_ms=write_ms, **paths, **shares)
        except Exception as exc:  # noqa: BLE001 - reported per image, the other images go on
            return self._row(work, index, name=name, error=f"{type(exc).__name__}: {exc}")

    # -- video ranges ------------------------------------------------------------------

    def _video(self, work: Mapping[str, Any]) -> List[dict]:
        """Decode frames ``[start, stop)`` of the video (to its end when ``stop`` is -1) with
        OpenCV and segment each; a frame that does not decode is an error row."""
        start, stop = int(work["start"]), int(work["stop"])
        cap = _open_at(work["path"], start)
        if cap is None:
            return [self._row(work, start, name=work["name"],
                              error=f"SourceError: {work['path']}: cannot open or seek to frame {start} as a video")]
        rows = []
        try:
            index = start
            while stop < 0 or index < stop:
                t0 = time.perf_counter()
                ok, frame = cap.read()
                decode_ms = (time.perf_counter() - t0) * 1e3
                name = f"{work['name']}_{index:06d}"
                if not ok:
                    if stop < 0:
                        break  # the end of the file
                    rows.append(self._row(work, index, name=name,
                                          error=f"SourceError: {work['path']}: frame {index} does not decode"))
                else:
                    if self._rgb:
                        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                    rows.append(self._segment_one(work, frame, index, name, decode_ms))
                index += 1
        finally:
            cap.release()
        return rows


def _open_at(path: str, start: int) -> Optional[Any]:
    """A capture positioned at frame ``start``: a seek, checked; where the container does not
    seek exactly, the frames before ``start`` are decoded and dropped."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        return None
    if start > 0:
        cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != start:
            cap.release()
            cap = cv2.VideoCapture(path)
            for _ in range(start):
                if not cap.grab():
                    break
    return cap


class EvalActor:
    """Score batches of image indices of one dataset split: each batch returns one row with its
    confusion matrix (a :class:`~mtkseg.metrics.ConfusionMatrix` accumulated image by image
    with :meth:`~mtkseg.metrics.ConfusionMatrix.merge`), the indices it counted and the errors
    of the images it could not count.  Frames are fed exactly as
    :func:`mtkseg.evaluate.evaluate_model` feeds them (RGB read, converted to BGR).

    A matrix per batch rather than per actor: when an actor dies, Ray retries its batches on a
    new one and keeps the outputs of finished batches, so every image is counted once.
    """

    def __init__(self, model: ModelArg, options: SegmenterOptions, data: str, split: str) -> None:
        from ..data import SegmentationDataset

        self._ds = SegmentationDataset(data, split)
        self._seg = _open(model, options)
        self._model = model if isinstance(model, str) else "<model bytes>"
        self._worker = _worker_id()

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        matrix, counted, errors, run_s = self._score([int(i) for i in batch.column("index").to_pylist()])
        return pa.Table.from_pylist(
            [{"matrix": matrix.ravel().tolist(), "indices": counted, "errors": errors, "run_s": run_s,
              "worker": self._worker}],
            schema=pa.schema([("matrix", pa.list_(pa.int64())), ("indices", pa.list_(pa.int64())),
                              ("errors", pa.list_(pa.string())), ("run_s", pa.float64()), ("worker", pa.string())]))

    def _score(self, indices: Sequence[int]) -> Tuple[np.ndarray, List[int], List[str], float]:
        from ..evaluate import _check_mask
        from ..metrics import ConfusionMatrix

        ds = self._ds
        total = ConfusionMatrix(ds.num_classes, ds.classes.ignore_index, ds.classes.names)
        counted: List[int] = []
        errors: List[str] = []
        run_s = 0.0
        for i in indices:
            try:
                image, gt = ds[i]
                frame = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
                t0 = time.perf_counter()
                result = self._seg.run(frame)
                run_s += time.perf_counter() - t0
                one = ConfusionMatrix(ds.num_classes, ds.classes.ignore_index, ds.classes.names)
                one.update(gt, _check_mask(result.mask, gt, ds.num_classes, self._model))
            except Exception as exc:  # noqa: BLE001 - reported with the image's path
                errors.append(f"{ds.image_paths[i]}: {type(exc).__name__}: {exc}")
                continue
            total = total.merge(one)
            counted.append(i)
        return total.matrix, counted, errors, run_s


def as_options(options: Union[SegmenterOptions, Mapping[str, Any], None]) -> SegmenterOptions:
    """``options`` as a :class:`~mtkseg.SegmenterOptions` (a mapping of Segmenter keyword
    arguments is still accepted and converted once)."""
    if options is None:
        return SegmenterOptions()
    if isinstance(options, SegmenterOptions):
        return options
    if isinstance(options, Mapping):
        return SegmenterOptions.from_kwargs(**options)
    raise InvalidTypeError(f"options: expected a mtkseg.SegmenterOptions (or a dict of its fields), got "
                           f"{type(options).__name__}")


def options_with_threads(options: Union[SegmenterOptions, Mapping[str, Any], None], threads: int) -> SegmenterOptions:
    """``options`` with ``num_threads`` set to the actor's CPUs."""
    return as_options(options).replace(num_threads=int(threads))
