"""``mtkseg eval``: score a .tflite model on a labelled split (no TensorFlow needed).

Examples::

    mtkseg eval default --data ../shared/data/camvid --split test
    mtkseg eval unet-int8.tflite --data ../shared/data/camvid --limit 20 --delegate cpu --threads 2
    mtkseg eval default --data ../shared/data/camvid --engine ray --workers 2
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, List

from ._engine import add_engine_arguments, check_engine_arguments, evaluate_ray
from ._types import positive_int
from .run import add_runtime_arguments, make_segmenter, resolve_model

HELP = "evaluate a .tflite model on a labelled dataset split: per-class IoU, mIoU, pixel accuracy"


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """``--data``, ``--split``, ``--limit``, ``--no-progress`` (shared with ``mtkseg compare``)."""
    p.add_argument("--data", required=True, help="dataset folder: images/{split}, masks/{split}, classes.json")
    p.add_argument("--split", default="test", help="which split to score: a folder under images/ and masks/ "
                                                   "(default test)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N", help="use only the first N images")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def segmenter_factory(args: argparse.Namespace, opened: List[Any]) -> Callable[[Any, Any], Any]:
    """``f(model, num_threads)`` for :func:`mtkseg.evaluate.evaluate_model` that builds the Segmenter
    from the runtime options (``--delegate``, ``--threads``, ...) and records it in ``opened``."""

    def make(model: Any, _num_threads: Any) -> Any:
        seg = make_segmenter(args, model=str(model))
        opened.append(seg)
        return seg

    return make


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help=HELP, description=HELP + ".")
    p.add_argument("model", metavar="MODEL", help="a .tflite model (its sidecar JSON is used if present), or 'default' "
                                                  "for the bundled one")
    add_data_arguments(p)
    p.add_argument("--json", default=None, metavar="PATH", help="metrics JSON (default: MODEL.eval-SPLIT.json)")
    p.add_argument("--chart", default=None, metavar="PATH",
                   help="per-class IoU bar chart PNG (default: MODEL.eval-SPLIT.png)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing JSON/chart (never the model)")
    add_runtime_arguments(p)
    add_engine_arguments(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from .. import _io
    from ..evaluate import draw_iou_bars, evaluate_model, write_json

    overwrite = getattr(args, "overwrite", False)
    model = resolve_model(args.model)
    stem = Path(args.model).with_suffix("")  # "default" writes default.eval-SPLIT.* here, not beside the package
    json_path = Path(args.json) if args.json else stem.with_name(f"{stem.name}.eval-{args.split}.json")
    chart_path = Path(args.chart) if args.chart else stem.with_name(f"{stem.name}.eval-{args.split}.png")
    for path, what in ((json_path, "--json"), (chart_path, "--chart")):  # before the (long) evaluation
        _io.check_output(path, inputs=[model], overwrite=overwrite, what=what)
    check_engine_arguments(args)
    opened: List[Any] = []
    if args.engine == "ray":
        report = evaluate_ray(args, model)
        runs_on = f"ray, {report.workers} actor(s) x {report.cpus_per_worker} thread(s)"
    else:
        report = evaluate_model(model, args.data, split=args.split, limit=args.limit, progress=args.progress,
                                segmenter_factory=segmenter_factory(args, opened))
        runs_on = f"{opened[0].delegate}, {opened[0].num_threads} thread(s)"
    write_json(report.to_dict(), json_path, overwrite=overwrite, inputs=[model])
    from ..data import load_classes

    palette = load_classes(args.data).palette
    draw_iou_bars(report.metrics, chart_path, title=f"{Path(model).name} on {args.split} "
                  f"(mIoU {100 * report.metrics.miou:.1f})", palette_rgb=palette, overwrite=overwrite)
    print(f"{Path(model).name} on {args.data} [{args.split}], {report.num_images} images, "
          f"{report.ms_per_image:.1f} ms/image ({runs_on})")
    print(report.metrics.format_table())
    print(f"wrote {json_path} and {chart_path}")
    for s in opened:
        s.close()
    return 1 if getattr(report, "errors", None) else 0
