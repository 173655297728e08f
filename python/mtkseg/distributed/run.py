"""``segment``: the distributed ``mtkseg run`` — masks (and overlays) of many images and videos
written by a pool of Ray actors, plus a Parquet table of per-frame class shares and timings."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

from .. import _io
from ..errors import DistributedError, InvalidArgumentError
from ..options import SegmenterOptions
from . import _ray
from .actors import OUTPUT_SUFFIXES, SegmentActor, as_options, options_with_threads
from .sources import frame_count, work_items, work_rows

__all__ = ["RunReport", "segment", "PARQUET_NAME"]

PathLike = Union[str, "os.PathLike[str]"]
ModelLike = Union[PathLike, bytes]
#: The table written beside the masks.
PARQUET_NAME = "results.parquet"


@dataclass
class RunReport:
    """What :func:`segment` did.

    Attributes:
        table: one row per image / video frame (a ``pyarrow.Table``, sorted by input and
            frame), columns as :func:`~mtkseg.distributed.actors.result_schema`.
        parquet: where the table was written (None with ``parquet=False``).
        workers: actors used; ``cpus_per_worker``: CPUs (= interpreter threads) of each.
        seconds: wall time of the run on the driver (actor start-up included).
        startup_seconds: from the start to the first finished batch (starting actors, loading
            the model, the first batch).
        failures: ``(source path, frame or -1, error)`` of every frame that failed.
    """

    table: Any
    parquet: Optional[Path]
    out_dir: Path
    workers: int
    cpus_per_worker: int
    seconds: float
    startup_seconds: float = 0.0
    first_batch_rows: int = 0
    failures: List[Tuple[str, int, str]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        """Frames segmented successfully."""
        return int(self.table.num_rows) - len(self.failures)

    @property
    def frames_per_second(self) -> float:
        """Frames (all rows) per second of wall time, start-up included."""
        return self.table.num_rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_frames_per_second(self) -> float:
        """Frames per second once the first batch is out (start-up excluded)."""
        span = self.seconds - self.startup_seconds
        return (self.table.num_rows - self.first_batch_rows) / span if span > 0 else 0.0


def _model_arg(model: ModelLike) -> Union[str, bytes]:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(Path(model).absolute())  # actors do not share the driver's working folder
    raise InvalidArgumentError(f"model: expected a path or the model's bytes, got {type(model).__name__}")


def model_label(model: ModelLike, full: bool = False) -> str:
    """How a model is named in reports: its path (``full``) or file name; ``<model bytes>``."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return "<model bytes>"
    return os.fspath(model) if full else Path(model).name


def probe_model(model: Union[str, bytes], options: SegmenterOptions) -> Tuple[str, ...]:
    """Open the model once on the driver with the actors' options: a bad model or option fails
    here, before any actor starts.  Returns the class names."""
    from ..segmenter import Segmenter

    with Segmenter(model, options=options.replace(num_threads=1)) as seg:
        return tuple(seg.class_names)


def resolve_threads(options: Union[SegmenterOptions, Mapping[str, Any], None], cpus_per_worker: Optional[int]) -> int:
    """CPUs per actor: ``cpus_per_worker``, else ``options.num_threads``, else 1."""
    given = as_options(options).num_threads
    threads = cpus_per_worker if cpus_per_worker is not None else (given or 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidArgumentError(f"cpus_per_worker: expected a positive int, got {threads!r}")
    if given is not None and given != threads:
        raise InvalidArgumentError(f"options: num_threads={given} but cpus_per_worker={threads}; each actor's "
                                   "Segmenter runs as many threads as the actor has CPUs, give only one of them")
    return threads


def resolve_workers(workers: Optional[int], threads: int) -> int:
    """Actors: ``workers``, else as many as the cluster's CPUs hold."""
    if workers is None:
        return max(1, _ray.cluster_cpus() // threads)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgumentError(f"workers: expected a positive int, got {workers!r}")
    return workers


def _check_outputs(items: Sequence[Any], out_dir: Path, outputs: Sequence[str], parquet: bool,
                   overwrite: bool) -> None:
    """Every output is checked before a model loads (as ``mtkseg run`` does)."""
    inputs = [item.path for item in items]
    _io.check_folder(out_dir, "*" + OUTPUT_SUFFIXES[outputs[0]], overwrite=True, what="out_dir")  # not a file
    for item in items:
        for what in outputs:
            if item.kind == "video":
                _io.check_folder(out_dir, f"{glob.escape(item.name)}_[0-9]*{OUTPUT_SUFFIXES[what]}",
                                 overwrite=overwrite, what="out_dir")
            else:
                _io.check_output(out_dir / f"{item.name}{OUTPUT_SUFFIXES[what]}", inputs=inputs,
                                 overwrite=overwrite, what="out_dir")
    if parquet:
        _io.check_output(out_dir / PARQUET_NAME, inputs=inputs, overwrite=overwrite, what="out_dir")


def write_parquet(table: Any, path: Path, *, overwrite: bool) -> Path:
    """Write ``table`` with Ray Data as one Parquet file, then move it onto ``path`` with the
    safe-output rules of :mod:`mtkseg._io` (never half a file, never over an input or a link)."""
    ray = _ray.require_ray()
    existed = path.exists()
    tmp = Path(tempfile.mkdtemp(prefix=f"{_io.TMP_PREFIX}{path.name}.", suffix=".part", dir=os.fspath(path.parent)))
    try:
        ray.data.from_arrow(table).repartition(1).write_parquet(os.fspath(tmp))
        files = sorted(tmp.glob("*.parquet"))
        if not files and table.num_rows == 0:  # Ray writes no file for no rows
            import pyarrow.parquet as pq

            files = [tmp / "empty.parquet"]
            pq.write_table(table, os.fspath(files[0]))
        if len(files) != 1:
            raise DistributedError(f"{path}: Ray Data wrote {len(files)} Parquet files, expected 1")
        _io.commit(files[0], path, overwrite=overwrite, what="out_dir", existed=existed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def segment(
    model: ModelLike,
    sources: Union[PathLike, Sequence[PathLike]],
    out_dir: PathLike,
    *,
    options: Union[SegmenterOptions, Mapping[str, Any], None] = None,
    workers: Optional[int] = None,
    cpus_per_worker: Optional[int] = None,
    overlay: bool = False,
    color_mask: bool = False,
    alpha: float = 0.5,
    legend: bool = False,
    overwrite: bool = False,
    parquet: bool = True,
    frames_per_task: Optional[int] = None,
    batch_size: Optional[int] = None,
    address: Optional[str] = None,
    progress: bool = True,
    actor_class: type = SegmentActor,
    max_restarts: int = 3,
    max_task_retries: int = 3,
) -> RunReport:
    """Segment images and videos on a Ray cluster; write what ``mtkseg run`` writes.

    Args:
        model: ``.tflite`` path (on storage every node sees) or the model's bytes.
        sources: image files, folders of images, glob patterns and video files (split into
            frame ranges of ``frames_per_task`` frames, each decoded by its own task).
        out_dir: ``<name>_mask.png`` per image (``<name>_<frame:06d>_mask.png`` per video
            frame), ``_overlay.png``/``_color.png`` with ``overlay``/``color_mask``, and
            ``results.parquet`` (see :class:`RunReport`); names as ``mtkseg run`` gives them.
        options: a :class:`~mtkseg.SegmenterOptions` (or a dict of its fields), passed whole to every actor.
        workers: actors (default: cluster CPUs // ``cpus_per_worker``).
        cpus_per_worker: CPUs per actor, which are its interpreter threads (default 1).
        alpha, legend: overlay opacity; class legend on overlays and colour masks.
        overwrite: replace existing outputs (inputs are never written).
        batch_size: rows per batch (default: about 4 batches per actor, at most 16).
        address: join this Ray cluster; default: the one this process is connected to, else a
            new local one (shut down at the end).
        actor_class: :class:`SegmentActor` or a subclass (e.g. with per-batch hooks).
        max_restarts, max_task_retries: Ray's retries of a dead actor and its batches.

    A frame that fails becomes a row with its ``error`` (and the source path), listed in
    :attr:`RunReport.failures`; the others go on.
    """
    items = work_items(sources)
    if not items:
        raise InvalidArgumentError(f"sources: no images or videos found in {sources!r}")
    threads = resolve_threads(options, cpus_per_worker)
    opts = options_with_threads(options, threads)
    model_arg = _model_arg(model)
    out = Path(out_dir).absolute()
    outputs = ["mask"] + (["overlay"] if overlay else []) + (["color"] if color_mask else [])
    _check_outputs(items, out, outputs, parquet, overwrite)
    class_names = probe_model(model_arg, opts)
    _io.ensure_dir(out, what="out_dir")
    t0 = time.perf_counter()
    with _ray.ray_cluster(address):
        n_workers = resolve_workers(workers, threads)
        rows = work_rows(items, frames_per_task=frames_per_task, workers=n_workers)
        size = batch_size or _ray.plan_batch_size(len(rows), n_workers)
        total = sum(frame_count(i.path) if i.kind == "video" else 1 for i in items)
        tables, arrivals = _ray.run_actors(
            rows, actor_class, dict(model=model_arg, options=opts, out_dir=os.fspath(out), outputs=outputs, alpha=alpha,
                                      legend=legend),
            workers=n_workers, cpus_per_worker=threads, batch_size=size, progress=progress, total=total,
            desc="mtkseg run (ray)", count=lambda t: t.num_rows, max_restarts=max_restarts,
            max_task_retries=max_task_retries)
        seconds = time.perf_counter() - t0
        table = _collect(tables, class_names)
        with _ray.quiet_ray_data():
            path = write_parquet(table, out / PARQUET_NAME, overwrite=overwrite) if parquet else None
    errors = table.column("error").to_pylist()
    failures = [(s, int(f), e) for s, f, e in zip(table.column("source").to_pylist(), table.column("frame").to_pylist(),
                                                  errors) if e is not None]
    startup = (arrivals[0] - t0) if arrivals else seconds
    return RunReport(table, path, out, n_workers, threads, seconds, startup, tables[0].num_rows if tables else 0,
                     failures)


def _collect(tables: List[Any], class_names: Sequence[str]) -> Any:
    import pyarrow as pa

    from .actors import result_schema

    table = pa.concat_tables(tables) if tables else result_schema(class_names).empty_table()
    return table.sort_by([("item", "ascending"), ("frame", "ascending")])
