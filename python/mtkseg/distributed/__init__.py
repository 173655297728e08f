"""Scale out on Ray (the ``ray`` extra: ``pip install 'mtkseg[ray]'``).

::

    from mtkseg import distributed

    report = distributed.segment("model.tflite", ["photos/", "clips/drive.mp4"], "out/", workers=8)
    report.table            # pyarrow.Table: per-frame class shares, timings, errors (also out/results.parquet)
    ev = distributed.evaluate("model.tflite", "data/camvid", "test", workers=8)
    ev.metrics.miou         # == mtkseg.evaluate.evaluate_model(...).metrics.miou, exactly

Inputs become a Ray Dataset of work rows (one per image, one per frame range of a video);
``map_batches`` runs them through a pool of actors (:class:`SegmentActor`, :class:`EvalActor`),
each holding one :class:`~mtkseg.Segmenter` built in its ``__init__`` from the model path or
bytes and the Segmenter options (passed whole), with ``num_threads`` = the actor's CPUs.
Actors that die are restarted and their batches retried; a frame that fails is a result row
with its error.  On a multi-node cluster the models, inputs and output folder must lie on
storage every node sees (NFS, a shared volume), and mtkseg must be installed on every node.

This package is the only part of mtkseg that imports Ray, and only when a function runs.
"""

from __future__ import annotations

from ._ray import ray_cluster, require_ray
from .actors import EvalActor, SegmentActor, result_schema
from .evaluation import DistributedEvalReport, evaluate
from .run import PARQUET_NAME, RunReport, segment
from .sources import expand_sources, output_names

__all__ = ["segment", "evaluate", "RunReport", "DistributedEvalReport", "SegmentActor", "EvalActor", "ray_cluster",
           "require_ray", "result_schema", "expand_sources", "output_names", "PARQUET_NAME"]
