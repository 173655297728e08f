"""``evaluate``: the distributed ``mtkseg eval`` — the same dataset-level confusion matrix as
:func:`mtkseg.evaluate.evaluate_model`, accumulated by a pool of Ray actors."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import reduce
from typing import Any, List, Mapping, Optional, Union

import numpy as np

from ..errors import DistributedError
from ..evaluate import EvalReport, _dataset
from ..metrics import ConfusionMatrix
from ..options import SegmenterOptions
from . import _ray
from .actors import EvalActor, options_with_threads
from .run import ModelLike, _model_arg, model_label, probe_model, resolve_threads, resolve_workers

__all__ = ["DistributedEvalReport", "evaluate"]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class DistributedEvalReport(EvalReport):
    """:class:`~mtkseg.evaluate.EvalReport` of a distributed run (``seconds`` is the summed
    ``run()`` time of all actors, as in the single-process report), plus:

    Attributes:
        wall_seconds: wall time on the driver (actor start-up included).
        workers, cpus_per_worker: the actor pool.
        errors: ``"path: error"`` of each image that could not be scored (not in the metrics).
    """

    wall_seconds: float = 0.0
    workers: int = 1
    cpus_per_worker: int = 1
    errors: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "engine": "ray", "workers": self.workers, "cpus_per_worker": self.cpus_per_worker,
                "wall_seconds": round(self.wall_seconds, 3), "errors": list(self.errors)}


def evaluate(
    model: ModelLike,
    data: PathLike,
    split: str = "test",
    *,
    options: Union[SegmenterOptions, Mapping[str, Any], None] = None,
    workers: Optional[int] = None,
    cpus_per_worker: Optional[int] = None,
    limit: Optional[int] = None,
    batch_size: Optional[int] = None,
    address: Optional[str] = None,
    progress: bool = True,
    actor_class: type = EvalActor,
    max_restarts: int = 3,
    max_task_retries: int = 3,
) -> DistributedEvalReport:
    """Score ``model`` on ``data/images/split`` with a pool of Ray actors.

    Every actor scores its batches into a :class:`~mtkseg.metrics.ConfusionMatrix`; the driver
    merges the batch matrices with :meth:`~mtkseg.metrics.ConfusionMatrix.merge`.  Counts add
    exactly, so the matrix (and every score) equals that of
    :func:`mtkseg.evaluate.evaluate_model` with the same options.  Arguments as
    :func:`mtkseg.distributed.segment`; ``data`` must lie on storage every node sees.

    Raises:
        DistributedError: an image was counted twice or not at all (a lost batch).
    """
    ds, n = _dataset(data, split, limit)
    threads = resolve_threads(options, cpus_per_worker)
    opts = options_with_threads(options, threads)
    model_arg = _model_arg(model)
    probe_model(model_arg, opts)
    t0 = time.perf_counter()
    with _ray.ray_cluster(address):
        n_workers = resolve_workers(workers, threads)
        size = batch_size or _ray.plan_batch_size(n, n_workers)
        tables, _ = _ray.run_actors(
            [{"index": i} for i in range(n)], actor_class,
            dict(model=model_arg, options=opts, data=os.fspath(ds.root.absolute()), split=split),
            workers=n_workers, cpus_per_worker=threads, batch_size=size, progress=progress, total=n,
            desc=f"eval {model_label(model)} (ray)",
            count=lambda t: sum(len(i) + len(e) for i, e in zip(t.column("indices").to_pylist(),
                                                                t.column("errors").to_pylist())),
            max_restarts=max_restarts, max_task_retries=max_task_retries)
    wall = time.perf_counter() - t0
    rows = [row for table in tables for row in table.to_pylist()]
    counted = [i for row in rows for i in row["indices"]]
    errors = [e for row in rows for e in row["errors"]]
    if len(counted) != len(set(counted)):
        raise DistributedError(f"{len(counted) - len(set(counted))} image(s) were counted twice; the result is void")
    if len(counted) + len(errors) != n:
        raise DistributedError(f"{n - len(counted) - len(errors)} of {n} image(s) were lost by the Ray run; "
                               "the result is void (run it again)")
    c = ds.num_classes
    parts = []
    for row in rows:
        part = ConfusionMatrix(c, ds.classes.ignore_index, ds.classes.names)
        part.matrix = np.asarray(row["matrix"], dtype=np.int64).reshape(c, c)
        parts.append(part)
    merged = reduce(ConfusionMatrix.merge, parts, ConfusionMatrix(c, ds.classes.ignore_index, ds.classes.names))
    seconds = float(sum(row["run_s"] for row in rows))
    return DistributedEvalReport(model_label(model, full=True), os.fspath(data),
                                 split, len(counted), seconds, merged.results(), wall_seconds=wall, workers=n_workers,
                                 cpus_per_worker=threads, errors=sorted(errors))
