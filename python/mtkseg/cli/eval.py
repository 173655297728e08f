"""``mtkseg eval``: score a .tflite model on a labelled split (no TensorFlow needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "evaluate a .tflite model on a labelled dataset split: per-class IoU, mIoU, pixel accuracy"


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help=HELP, description=HELP)
    p.add_argument("model", help=".tflite model (its sidecar JSON is used if present)")
    p.add_argument("--data", required=True, help="dataset folder: images/{split}, masks/{split}, classes.json")
    p.add_argument("--split", default="test")
    p.add_argument("--threads", type=int, default=2, help="interpreter threads (default 2)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    p.add_argument("--json", default=None, metavar="PATH", help="metrics JSON (default: MODEL.eval-SPLIT.json)")
    p.add_argument("--chart", default=None, metavar="PATH",
                   help="per-class IoU bar chart PNG (default: MODEL.eval-SPLIT.png)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing JSON/chart (never the model)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from .. import _io
    from ..evaluate import draw_iou_bars, evaluate_model, write_json

    overwrite = getattr(args, "overwrite", False)
    stem = Path(args.model).with_suffix("")
    json_path = Path(args.json) if args.json else stem.with_name(f"{stem.name}.eval-{args.split}.json")
    chart_path = Path(args.chart) if args.chart else stem.with_name(f"{stem.name}.eval-{args.split}.png")
    for path, what in ((json_path, "--json"), (chart_path, "--chart")):  # before the (long) evaluation
        _io.check_output(path, inputs=[args.model], overwrite=overwrite, what=what)
    report = evaluate_model(args.model, args.data, split=args.split, num_threads=args.threads,
                            limit=args.limit, progress=args.progress)
    write_json(report.to_dict(), json_path, overwrite=overwrite, inputs=[args.model])
    from ..data import load_classes

    palette = load_classes(args.data).palette
    draw_iou_bars(report.metrics, chart_path, title=f"{Path(args.model).name} on {args.split} "
                  f"(mIoU {100 * report.metrics.miou:.1f})", palette_rgb=palette, overwrite=overwrite)
    print(f"{Path(args.model).name} on {args.data} [{args.split}], {report.num_images} images, "
          f"{report.ms_per_image:.1f} ms/image ({args.threads} threads)")
    print(report.metrics.format_table())
    print(f"wrote {json_path} and {chart_path}")
    return 0
