"""``mtkseg info``: what mtkseg reads from a model, and how it would run here.

Examples::

    mtkseg info model.tflite
    mtkseg info model.tflite --json --delegate gpu,cpu
"""

from __future__ import annotations

import argparse
import json
import sys

from .run import add_runtime_arguments, make_segmenter, resolve_model

HELP = "describe a model: input/output layout, dtype, quantisation, classes, normalization, delegate"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="a .tflite segmentation model, or 'default' for the bundled one")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--no-load", dest="load", action="store_false",
                   help="only read the file; do not load it in an interpreter (no delegate/backend line)")
    add_runtime_arguments(p)


def handler(args: argparse.Namespace) -> int:
    from ..errors import MtksegError
    from ..runtime import inspect_model

    model = resolve_model(args.model)
    runtime = None
    error = None
    info = None
    if args.load:
        # Loaded, the model is described from the tensors the interpreter allocated (files
        # from old converters declare stale output shapes).
        try:
            seg = make_segmenter(argparse.Namespace(**{**vars(args), "model": model}))
        except MtksegError as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            with seg:
                info = seg.info
                runtime = {"backend": seg.backend, "delegate": seg.delegate, "num_threads": seg.num_threads,
                           "copies_per_frame": seg.copies_per_frame,
                           "coverage": seg.delegate_coverage.to_dict() if seg.delegate_coverage else None,
                           "skipped": [{"name": n, "reason": r} for n, r in seg.delegate_attempts]}
    if info is None:
        info = inspect_model(model, input_size=args.input_size, labels=args.labels, output=args.output_tensor,
                             normalization=args.normalization,
                             output_map_size=args.output_map_size)  # as declared in the file
    if args.json:
        doc = {"model": info.to_dict()}
        if args.load:
            doc["runtime"] = runtime if runtime is not None else {"error": error}
        print(json.dumps(doc, indent=2))
    else:
        print(info)
        if runtime is not None:
            print(f"runtime:        {runtime['backend']}, runs on {runtime['delegate']}, "
                  f"{runtime['num_threads']} thread(s), {runtime['copies_per_frame']} frame copies")
            if runtime["coverage"] is not None:
                cov = runtime["coverage"]
                left = ", ".join(f"{k} x{v}" for k, v in sorted(cov["cpu_ops"].items(), key=lambda kv: (-kv[1], kv[0])))
                print(f"delegate ops:   {cov['delegated_ops']}/{cov['total_ops']} ({100 * cov['fraction']:.0f}%) on "
                      f"{cov['delegate']} in {cov['partitions']} partition(s)" + (f"; on the CPU: {left}" if left else ""))
            for item in runtime["skipped"]:
                print(f"  skipped {item['name']}: {item['reason']}")
        elif error is not None:
            print(f"runtime:        cannot run here: {error}", file=sys.stderr)
    return 1 if error is not None else 0


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help=HELP, description=HELP + ".",
                              epilog="Exit status: 0 the model runs here, 1 it cannot be read or loaded.")
    add_arguments(p)
    p.set_defaults(func=handler)
