"""``mtkseg compare``: per-class IoU delta and pixel agreement of two .tflite models.

Example::

    mtkseg compare unet-float32.tflite unet-int8.tflite --data ../shared/data/camvid --limit 20
"""

from __future__ import annotations

import argparse
from typing import Any, List

from .eval import add_data_arguments, segmenter_factory
from .run import add_runtime_arguments, resolve_model

HELP = "compare two .tflite models on a labelled split (IoU delta, agreement, side-by-side PNGs)"


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help=HELP, description=HELP + ".")
    p.add_argument("model_a", metavar="MODEL_A", help="reference model (e.g. the float32 export), or 'default'")
    p.add_argument("model_b", metavar="MODEL_B", help="model to compare (e.g. the int8 export), or 'default'")
    add_data_arguments(p)
    p.add_argument("--out", default="compare_out", help="folder for the side-by-side PNGs and compare.json "
                                                        "(default ./compare_out)")
    p.add_argument("--examples", type=int, default=4, metavar="N",
                   help="number of side-by-side PNGs of the most different images (default 4; 0 for none)")
    p.add_argument("--overwrite", action="store_true", help="replace compare.json and PNGs already in --out")
    add_runtime_arguments(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .. import _io
    from ..evaluate import compare_models, write_json

    overwrite = getattr(args, "overwrite", False)
    model_a, model_b = resolve_model(args.model_a), resolve_model(args.model_b)
    inputs = [model_a, model_b]
    _io.check_output(Path(args.out) / "compare.json", inputs=inputs, overwrite=overwrite, what="--out")
    _io.check_folder(args.out, "diff_*.png", overwrite=overwrite, what="--out")
    opened: List[Any] = []
    report = compare_models(model_a, model_b, args.data, split=args.split, limit=args.limit, out_dir=args.out,
                            num_examples=args.examples, progress=args.progress, overwrite=overwrite,
                            segmenter_factory=segmenter_factory(args, opened))
    print(f"A = {model_a}\nB = {model_b}\n{report.num_images} images of {args.data} [{args.split}] "
          f"({opened[0].delegate}, {opened[0].num_threads} thread(s))")
    print(report.format_table())
    json_path = write_json(report.to_dict(), Path(args.out) / "compare.json", overwrite=overwrite, inputs=inputs)
    print(f"wrote {json_path}" + (f" and {len(report.examples)} side-by-side PNGs in {args.out}" if report.examples else ""))
    for s in opened:
        s.close()
    return 0
