"""``--engine ray`` of ``mtkseg run`` and ``mtkseg eval``: the same work on a Ray cluster
(:mod:`mtkseg.distributed`, the ``ray`` extra).  Without ``--address`` a local cluster is
started and shut down; with it, the running cluster at that address is joined."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._types import positive_int


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """``--engine``, ``--workers``, ``--address``."""
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default: this process) or ray (a pool of actors on a Ray cluster; "
                        "pip install 'mtkseg[ray]')")
    g.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="--engine ray: actors, each with --threads CPUs (default 1) (default: as many as the "
                        "cluster's CPUs hold)")
    g.add_argument("--address", default=None, metavar="ADDR",
                   help="--engine ray: join the running Ray cluster at ADDR (host:6379, ray://host:10001 or auto) "
                        "instead of starting a local one; inputs and outputs must be on storage every node sees")


def check_engine_arguments(args: argparse.Namespace) -> None:
    """``--workers``/``--address`` without ``--engine ray`` is a mistake, not a no-op."""
    from ..errors import InvalidArgumentError

    if args.engine != "ray" and (args.workers is not None or args.address is not None):
        raise InvalidArgumentError("--workers and --address apply to --engine ray; add --engine ray or drop them")


def _options(args: argparse.Namespace, **kwargs: Any) -> Any:
    """The actors' :class:`~mtkseg.SegmenterOptions` (``num_threads`` left to ``--threads`` as
    each actor's CPUs)."""
    from .run import segmenter_options

    return segmenter_options(args, **kwargs).replace(num_threads=None)


def run_ray(args: argparse.Namespace) -> int:
    """``mtkseg run --engine ray``: images, folders, globs and videos; prints failures and a summary."""
    from .. import distributed
    from .run import resolve_model

    report = distributed.segment(
        resolve_model(args.model), args.images, args.out_dir, options=_options(args, fit=args.fit, upsample=args.upsample),
        workers=args.workers, cpus_per_worker=args.threads, overlay=args.overlay, color_mask=args.color_mask,
        alpha=args.alpha, legend=args.legend, overwrite=args.overwrite, address=args.address,
        progress=not args.json)
    if args.json:
        for row in report.table.to_pylist():
            print(json.dumps(row, default=str))
    for source, frame, error in report.failures:
        where = source if frame < 0 else f"{source} frame {frame}"
        print(f"mtkseg run: error: {where}: {error}", file=sys.stderr)
    if not args.json:
        print(f"{report.frames} frame(s) on {report.workers} actor(s) x {report.cpus_per_worker} CPU: "
              f"{report.frames_per_second:.1f} frames/s ({report.steady_frames_per_second:.1f} after start-up), "
              f"{len(report.failures)} failed; outputs in {report.out_dir}, table {report.parquet}")
    return 1 if report.failures else 0


def evaluate_ray(args: argparse.Namespace, model: str) -> Any:
    """``mtkseg eval --engine ray``: a :class:`~mtkseg.distributed.DistributedEvalReport`
    (images that failed are printed and listed in the report)."""
    from .. import distributed

    report = distributed.evaluate(model, args.data, args.split, options=_options(args), workers=args.workers,
                                  cpus_per_worker=args.threads, limit=args.limit, address=args.address,
                                  progress=args.progress)
    for error in report.errors:
        print(f"mtkseg eval: error: {error}", file=sys.stderr)
    return report
