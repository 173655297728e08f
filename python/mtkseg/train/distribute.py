"""Multi-worker training: ``tf.distribute.MultiWorkerMirroredStrategy`` around the recipe.

:func:`resolve_cluster` reads the cluster from ``TF_CONFIG`` (or builds it from
``--workers host:port,...`` and ``--worker-index N``); :class:`MultiWorker` holds the strategy
and the pieces :func:`mtkseg.train.loop.train` swaps in when it is given one:

* model and optimizers are built inside :meth:`MultiWorker.scope` (variables mirrored, initial
  values broadcast from the chief), BatchNorm layers compute their batch statistics over the
  global batch (``synchronized``), so every step is the single-process step of the same batch;
* :meth:`MultiWorker.dataset`: each worker augments its own consecutive slice of every global
  batch (``train_dataset(..., shard=(index, count))``), the global batch is ``--batch-size``;
* :meth:`MultiWorker.train_step`: the masked cross-entropy's numerator is summed per worker and
  divided by the all-reduced denominator (labelled pixels of the global batch), the L2 term is
  split over workers, gradients are all-reduced (SUM) by the optimizers; predictions and labels
  are all-gathered for the training confusion matrix;
* checkpoints, logs and curves are written by the chief only; the others write to a temporary
  folder that is deleted right after (as TensorFlow's multi-worker guide recommends).

Validation runs on the chief only.  Every worker reads the data, and on ``--resume`` the run
directory, from its own path: on several machines these must be on shared storage.  Collectives
use gRPC rings (``CommunicationImplementation.RING``), which work on CPU-only machines.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional, Sequence, Tuple

from ..errors import TrainingError

__all__ = ["Cluster", "MultiWorker", "cluster_from_tf_config", "cluster_from_workers", "resolve_cluster"]


@dataclass(frozen=True)
class Cluster:
    """A training cluster: worker addresses (the chief first) and this process's place in it."""

    workers: Tuple[str, ...]
    index: int
    has_chief: bool = False  # TF_CONFIG named a separate 'chief' task (it is workers[0])

    @property
    def num_workers(self) -> int:
        return len(self.workers)

    @property
    def is_chief(self) -> bool:
        """Worker 0 (the 'chief' task, or 'worker' 0 when there is none) writes the run directory."""
        return self.index == 0

    @property
    def task(self) -> Tuple[str, int]:
        """``(task type, task index)`` as TF_CONFIG names this process."""
        if self.has_chief:
            return ("chief", 0) if self.index == 0 else ("worker", self.index - 1)
        return "worker", self.index

    def tf_config(self) -> dict:
        """The TF_CONFIG document of this process."""
        if self.has_chief:
            cluster = {"chief": [self.workers[0]], "worker": list(self.workers[1:])}
        else:
            cluster = {"worker": list(self.workers)}
        task_type, task_index = self.task
        return {"cluster": cluster, "task": {"type": task_type, "index": task_index}}


def _check_address(address: object, where: str) -> str:
    text = str(address).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TrainingError(f"{where}: expected host:port (e.g. 10.0.0.2:12345), got {address!r}")
    return text


def cluster_from_workers(workers: str, index: Optional[int]) -> Cluster:
    """``--workers host:port,host:port,...`` (worker 0 is the chief) and ``--worker-index N``."""
    addresses = [part for part in str(workers).replace(" ", "").split(",") if part]
    if len(addresses) < 1:
        raise TrainingError(f"--workers: expected host:port,host:port,..., got {workers!r}")
    addresses = [_check_address(a, "--workers") for a in addresses]
    if len(set(addresses)) != len(addresses):
        raise TrainingError(f"--workers: every worker needs its own host:port, got {workers!r}")
    if index is None:
        raise TrainingError("--workers needs --worker-index N: this process's position in the list (0 is the chief)")
    if not 0 <= int(index) < len(addresses):
        raise TrainingError(f"--worker-index {index}: expected 0..{len(addresses) - 1} for {len(addresses)} workers")
    return Cluster(tuple(addresses), int(index))


def cluster_from_tf_config(text: str) -> Cluster:
    """Parse a TF_CONFIG document with 'worker' (and optionally one 'chief') tasks."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise TrainingError(f"TF_CONFIG: not valid JSON ({exc}); see the README's 'Scale out' section") from None
    cluster, task = (doc.get("cluster"), doc.get("task")) if isinstance(doc, dict) else (None, None)
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise TrainingError('TF_CONFIG: expected {"cluster": {"worker": [...]}, "task": {"type": ..., "index": ...}}')
    other = sorted(set(cluster) - {"chief", "worker"})
    if other:
        raise TrainingError(f"TF_CONFIG: task types {other} are not supported; MultiWorkerMirroredStrategy uses "
                            "'worker' tasks (and optionally one 'chief')")
    chief, workers = list(cluster.get("chief") or []), list(cluster.get("worker") or [])
    if len(chief) > 1 or not chief + workers:
        raise TrainingError(f"TF_CONFIG: expected at most one 'chief' and at least one task, got {cluster}")
    addresses = [_check_address(a, "TF_CONFIG") for a in chief + workers]
    task_type, task_index = task.get("type"), task.get("index", 0)
    if task_type not in ("chief", "worker") or not isinstance(task_index, int):
        raise TrainingError(f"TF_CONFIG: task must be 'chief' or 'worker' with an integer index, got {task}")
    pool = chief if task_type == "chief" else workers
    if not 0 <= task_index < len(pool):
        raise TrainingError(f"TF_CONFIG: task {task_type} {task_index} is not in the cluster {cluster}")
    index = task_index + (len(chief) if task_type == "worker" else 0)
    return Cluster(tuple(addresses), index, has_chief=bool(chief))


def resolve_cluster(workers: Optional[str] = None, worker_index: Optional[int] = None,
                    environ: Mapping[str, str] = os.environ) -> Cluster:
    """The cluster from ``--workers``/``--worker-index`` if given, else from ``TF_CONFIG``."""
    if workers:
        return cluster_from_workers(workers, worker_index)
    if worker_index is not None:
        raise TrainingError("--worker-index needs --workers host:port,... (or set TF_CONFIG and drop --worker-index)")
    text = environ.get("TF_CONFIG", "")
    if not text.strip():
        raise TrainingError("--distribute multiworker needs the cluster: set TF_CONFIG, or pass "
                            "--workers host:port,host:port,... and --worker-index N")
    return cluster_from_tf_config(text)


class MultiWorker:
    """The strategy and the multi-worker versions of the loop's pieces (see the module docstring).

    Create it before any other TensorFlow op runs in the process (TensorFlow's rule for
    ``MultiWorkerMirroredStrategy``); creating it does not wait for the other workers, the
    first collective (variable creation in :meth:`scope`) does.
    """

    def __init__(self, cluster: Cluster):
        import tensorflow as tf

        self.cluster = cluster
        task_type, task_index = cluster.task
        config = cluster.tf_config()
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(config["cluster"]), task_type=task_type, task_id=task_index, rpc_layer="grpc")
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING)
        try:
            self.strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver,
                                                                      communication_options=options)
        except (RuntimeError, ValueError, tf.errors.OpError) as exc:
            raise TrainingError(f"multi-worker training could not start as {task_type} {task_index} of "
                                f"{','.join(cluster.workers)} ({exc}); check that the address is this machine's "
                                "and its port is free, and that TensorFlow had not run an op before") from exc
        replicas = self.strategy.num_replicas_in_sync
        if replicas != cluster.num_workers:
            raise TrainingError(f"multi-worker training expects one device per worker, got {replicas} replicas for "
                                f"{cluster.num_workers} workers; give each worker process one GPU "
                                "(CUDA_VISIBLE_DEVICES) or none")

    @property
    def is_chief(self) -> bool:
        return self.cluster.is_chief

    @property
    def num_workers(self) -> int:
        return self.cluster.num_workers

    def check_batch(self, batch_size: int, n_train: int) -> None:
        """The global batch must split evenly and be filled at least once."""
        if batch_size % self.num_workers or n_train < batch_size:
            raise TrainingError(
                f"--batch-size {batch_size} is the global batch: it must be a multiple of the {self.num_workers} "
                f"workers and at most the {n_train} training samples")

    def log(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log`` with lines of workers other than the chief marked by their index."""
        if self.is_chief:
            return log
        index = self.cluster.index
        return lambda line: log(f"[worker {index}] {line}")

    def scope(self):
        """Build model and optimizers in this context (mirrored variables)."""
        return self.strategy.scope()

    @staticmethod
    def synchronize_batch_norm(model) -> int:
        """BatchNorm statistics over the global batch, as a single process computes them; returns the count."""
        import keras

        layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
                  if isinstance(layer, keras.layers.BatchNormalization)]
        for layer in layers:
            layer.synchronized = True
        return len(layers)

    def dataset(self, build: Callable[[Tuple[int, int]], "object"]):
        """A distributed dataset from ``build((worker index, workers))`` (one ``tf.data.Dataset``
        of this worker's slices of the global batches)."""

        def per_worker(context):
            return build((context.input_pipeline_id, context.num_input_pipelines))

        return self.strategy.distribute_datasets_from_function(per_worker)

    def train_step(self, model, groups, kernels: Sequence, class_weights, ignore_index: int, l2: float,
                   to_label_size: Callable, ohem=None, lovasz_weight: float = 0.0):
        """A ``tf.function (x, y, frozen) -> (global ce, global predictions, global labels)``.

        With ``lovasz_weight`` each worker adds the Lovász-softmax of its own slice of the batch
        (divided by the number of workers: the gradients are summed), a per-slice estimate of the
        global batch's term."""
        import tensorflow as tf

        from .losses import l2_penalty, lovasz_term, masked_cross_entropy_terms

        strategy, n = self.strategy, float(self.num_workers)
        SUM = tf.distribute.ReduceOp.SUM

        def replica_step(x, y, frozen):
            context = tf.distribute.get_replica_context()
            with tf.GradientTape() as tape:
                logits = to_label_size(model(x, training=True), y)
                total, weight = masked_cross_entropy_terms(y, logits, class_weights, ignore_index, ohem)
                share = tf.math.divide_no_nan(total, context.all_reduce(SUM, tf.stop_gradient(weight)))
                loss = share + (l2 / n) * l2_penalty(kernels) if l2 > 0 else share
                if lovasz_weight > 0:
                    loss = loss + (lovasz_weight / n) * lovasz_term(y, logits, ignore_index)
            grads = tape.gradient(loss, model.trainable_variables)
            groups.apply(grads, frozen)  # the optimizers all-reduce (SUM) the gradients
            pred = tf.cast(tf.argmax(logits, axis=-1), tf.int32)
            both = context.all_gather(tf.stack([pred, tf.cast(y, tf.int32)]), axis=1)
            return share, tf.cast(both, tf.uint8)

        @tf.function(reduce_retracing=True)
        def step(x, y, frozen):
            share, both = strategy.run(replica_step, args=(x, y, frozen))
            ce = strategy.reduce(SUM, share, axis=None)
            both = strategy.experimental_local_results(both)[0]
            return ce, both[0], both[1]

        return step

    @contextmanager
    def write_dir(self, run_dir: Path) -> Iterator[Path]:
        """Where this worker writes an epoch's files: the run directory on the chief, a
        temporary folder (deleted on exit) on the others."""
        if self.is_chief:
            yield run_dir
            return
        tmp = Path(tempfile.mkdtemp(prefix=f"mtkseg-worker{self.cluster.index}-"))
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
