"""The one place mtkseg imports Ray: the import with its typed error, cluster start/join and
the small version differences of Ray Data."""

from __future__ import annotations

import contextlib
import inspect
import math
import time
import warnings
from typing import Any, Callable, Iterator, List, Optional, Tuple

from ..errors import DistributedError, InvalidArgumentError

__all__ = ["require_ray", "ray_cluster", "cluster_cpus", "dataset_from_rows", "quiet_ray_data", "plan_batch_size",
           "run_actors", "check_reachable"]

INSTALL_HINT = "pip install 'mtkseg[ray]'"


def require_ray() -> Any:
    """The ``ray`` module with Ray Data, or :class:`DistributedError` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the [data] extra: pyarrow, pandas)
    except ImportError as exc:
        raise DistributedError(f"the Ray engine needs Ray Data, which is not installed ({exc}); "
                               f"install it with: {INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def ray_cluster(address: Optional[str] = None, *, num_cpus: Optional[int] = None) -> Iterator[Any]:
    """Use Ray for the duration of the block.

    * Ray already initialised in this process (e.g. ``ray.init(num_cpus=2)`` by the caller):
      use it as it is, and leave it running.
    * ``address`` (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``): join that existing
      cluster, and disconnect at the end (the cluster keeps running).
    * neither: start a local cluster on this machine (``num_cpus`` of it, default all) and
      shut it down at the end.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1):
        raise InvalidArgumentError(f"num_cpus: expected a positive int, got {num_cpus!r}")
    kwargs: dict = {"include_dashboard": False, "logging_level": "WARNING"}
    if address:
        check_reachable(address)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
        hint = (" (is it running? `ray status --address ...` on the head node)" if address
                else " (or join a running one with --address)")
        raise DistributedError(f"cannot start or join {where}: {exc}{hint}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes, when nothing listens at ``host:port`` (``ray://host:port``);
    ``ray.init`` retries an unreachable head for minutes.  ``"auto"`` is left to Ray."""
    import socket

    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise DistributedError(f"--address {address!r}: nothing answers at {host}:{port} ({exc.strerror or exc}); "
                               "start the head node with `ray start --head --port 6379` and give HEAD:6379, "
                               "or drop --address for a local cluster") from None


def cluster_cpus() -> int:
    """CPUs of the connected cluster (all nodes)."""
    ray = require_ray()
    return int(ray.cluster_resources().get("CPU", 0))


def plan_batch_size(num_items: int, workers: int, *, per_worker: int = 4, largest: int = 16) -> int:
    """Rows per batch: at least ``per_worker`` batches per actor (so every actor always has the
    next batch queued and the last ones finish together), at most ``largest`` rows."""
    return max(1, min(largest, math.ceil(num_items / max(1, workers * per_worker))))


def dataset_from_rows(rows: List[dict], batch_size: int) -> Any:
    """A Ray Dataset of ``rows`` cut into blocks of about ``batch_size`` rows: Ray Data hands
    each actor whole blocks, so a single block would go to a single actor."""
    ray = require_ray()
    blocks = max(1, math.ceil(len(rows) / batch_size))
    params = inspect.signature(ray.data.from_items).parameters
    key = "override_num_blocks" if "override_num_blocks" in params else "parallelism"  # Ray < 2.10
    return ray.data.from_items(rows, **{key: blocks})


@contextlib.contextmanager
def quiet_ray_data() -> Iterator[None]:
    """Ray Data's own progress bars and INFO log lines off for the block: mtkseg shows one
    progress bar on the driver (or none with ``progress=False``)."""
    import logging

    from ray.data import DataContext

    ctx = DataContext.get_current()
    logger = logging.getLogger("ray.data")
    saved = ctx.enable_progress_bars, logger.level
    ctx.enable_progress_bars = False
    logger.setLevel(max(logging.WARNING, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        ctx.enable_progress_bars = saved[0]
        logger.setLevel(saved[1])

def _takes_remote_args(ds: Any) -> bool:
    params = inspect.signature(ds.map_batches).parameters.values()
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def run_actors(rows: List[dict], actor_class: type, constructor_kwargs: dict, *, workers: int, cpus_per_worker: int,
               batch_size: int, progress: bool, total: Optional[int], desc: str,
               count: Callable[[Any], int], max_restarts: int = 3,
               max_task_retries: int = 3) -> Tuple[List[Any], List[float]]:
    """``map_batches`` ``rows`` through ``workers`` actors of ``actor_class`` (``cpus_per_worker``
    CPUs each) and collect the output tables on the driver, with a progress bar that advances
    by ``count(table)`` per batch.  Returns the tables and the ``time.perf_counter()`` at which
    each arrived.

    ``max_restarts``/``max_task_retries``: an actor that dies (a crash, a lost node) is
    restarted and its unfinished batches are retried on the pool; outputs of failed attempts
    are dropped, so each batch is counted once.
    """
    from tqdm import tqdm

    ds = dataset_from_rows(rows, batch_size)
    with warnings.catch_warnings():
        # Ray 2.60 deprecates remote keywords in map_batches (removal in 2.64) with no named
        # replacement for these two; where they are gone, Ray Data's own defaults (unbounded
        # restarts and retries) apply.
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        retries = {"max_restarts": max_restarts, "max_task_retries": max_task_retries} if _takes_remote_args(ds) else {}
        mapped = ds.map_batches(
            actor_class, fn_constructor_kwargs=constructor_kwargs, batch_size=batch_size, batch_format="pyarrow",
            compute=require_ray().data.ActorPoolStrategy(size=workers), num_cpus=cpus_per_worker, **retries,
        )
    tables: List[Any] = []
    arrivals: List[float] = []
    with quiet_ray_data(), tqdm(total=total, desc=desc, disable=not progress, leave=False) as bar:
        try:
            for table in mapped.iter_batches(batch_format="pyarrow", batch_size=None):
                tables.append(table)
                arrivals.append(time.perf_counter())
                bar.update(count(table))
        except Exception as exc:  # a Ray error: every retry of a batch failed, or actors never started
            from ..errors import MtksegError

            if isinstance(exc, MtksegError):
                raise
            raise DistributedError(f"the Ray run failed after retries: {type(exc).__name__}: {exc}") from exc
    return tables, arrivals
