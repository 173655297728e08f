"""``mtkseg compare``: per-class IoU delta and pixel agreement of two .tflite models."""

from __future__ import annotations

import argparse

HELP = "compare two .tflite models on a labelled split (IoU delta, agreement, side-by-side PNGs)"


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help=HELP, description=HELP)
    p.add_argument("model_a", help="reference model (e.g. the float32 export)")
    p.add_argument("model_b", help="model to compare (e.g. the int8 export)")
    p.add_argument("--data", required=True, help="dataset folder: images/{split}, masks/{split}, classes.json")
    p.add_argument("--split", default="test")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--out", default="compare_out", help="folder for the side-by-side PNGs and compare.json")
    p.add_argument("--examples", type=int, default=4, help="number of side-by-side PNGs (most different images)")
    p.add_argument("--overwrite", action="store_true", help="replace compare.json and PNGs already in --out")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .. import _io
    from ..evaluate import compare_models, write_json

    overwrite = getattr(args, "overwrite", False)
    inputs = [args.model_a, args.model_b]
    _io.check_output(Path(args.out) / "compare.json", inputs=inputs, overwrite=overwrite, what="--out")
    _io.check_folder(args.out, "diff_*.png", overwrite=overwrite, what="--out")
    report = compare_models(args.model_a, args.model_b, args.data, split=args.split, num_threads=args.threads,
                            limit=args.limit, out_dir=args.out, num_examples=args.examples,
                            progress=args.progress, overwrite=overwrite)
    print(f"A = {args.model_a}\nB = {args.model_b}\n{report.num_images} images of {args.data} [{args.split}]")
    print(report.format_table())
    json_path = write_json(report.to_dict(), Path(args.out) / "compare.json", overwrite=overwrite, inputs=inputs)
    print(f"wrote {json_path}" + (f" and {len(report.examples)} side-by-side PNGs in {args.out}" if report.examples else ""))
    return 0
