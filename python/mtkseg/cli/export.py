"""``mtkseg export``: convert a training checkpoint to TFLite + sidecar JSON (train extra)."""

from __future__ import annotations

import argparse
import json
import os

from ..errors import ExportError

HELP = ("convert a training checkpoint to .tflite (float32/float16/dynamic/int8) with its sidecar JSON; "
        "--npu mediatek:SOC also compiles it ahead of time for a MediaTek NPU")


def _hw(text: str):
    parts = text.lower().replace("x", " ").replace(",", " ").split()
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 240x320, got {text!r}")
    return int(parts[0]), int(parts[1])


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help=HELP, description=HELP)
    p.add_argument("checkpoint", help="run directory (uses best.weights.h5) or a *.weights.h5 next to config.json; "
                                      "with --npu also an existing .tflite (compiled only)")
    p.add_argument("-o", "--output", required=True, help="output .tflite path (sidecar: same name, .json)")
    p.add_argument("--quant", choices=("float32", "float16", "dynamic", "int8"), default="int8",
                   help="weights/activations: int8 (full integer, default; needs --calib), dynamic, float16, float32")
    p.add_argument("--calib", default=None, metavar="DIR",
                   help="dataset folder with calibration images (default: the run's training data)")
    p.add_argument("--calib-split", default="train", help="split of --calib used for int8 calibration (default train)")
    p.add_argument("--calib-count", type=int, default=100, metavar="N",
                   help="calibration images for int8 (default 100)")
    p.add_argument("--io-type", choices=("float32", "int8", "uint8"), default="float32",
                   help="input/output tensor type of int8 models (default float32: quantize inside)")
    p.add_argument("--input-size", type=_hw, default=None, metavar="HxW", help="default: the run's input size")
    p.add_argument("--metrics", default=None, metavar="JSON", help="metrics JSON to copy into the sidecar")
    p.add_argument("--dataset-name", default=None, help="dataset description stored in the sidecar")
    p.add_argument("--license", dest="license_text", default=None, help="licence note stored in the sidecar and metadata")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output model and its sidecar JSON")
    p.add_argument("--prior-correction", type=float, default=0.0, metavar="ALPHA",
                   help="subtract ALPHA*log(class weight) from the logits (0-1; folded into the last layer's bias): "
                        "takes back part of the class weighting; choose ALPHA on a held-out split with "
                        "scripts/choose_prior_correction.py (default 0)")
    p.add_argument("--no-metadata", dest="metadata", action="store_false",
                   help="do not embed TFLite metadata (labels, normalisation) in the model; the sidecar JSON is "
                        "written either way")
    p.add_argument("--npu", default=None, metavar="VENDOR:SOC",
                   help="also compile ahead of time for an NPU, e.g. mediatek:MT6991 (any SoC of ai_edge_litert.aot's "
                        "MediaTek targets; needs pip install ai-edge-litert-sdk-mediatek): writes NAME_SOC.tflite next "
                        "to the output")
    p.set_defaults(func=handler)


def _compile_npu(args: argparse.Namespace, model) -> None:
    from pathlib import Path

    from ..npu_export import compile_for_npu, parse_npu_target

    _, soc = parse_npu_target(args.npu)
    out = Path(args.output)
    if str(model) == str(out):
        out = out.with_name(f"{out.stem}_{soc}{out.suffix or '.tflite'}")
    print(f"wrote {compile_for_npu(model, args.npu, out)} (compiled ahead of time for MediaTek {soc})")


def handler(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.npu:
        from ..npu_export import check_sdk, parse_npu_target

        check_sdk(parse_npu_target(args.npu)[0])  # fail before a long conversion
        if str(args.checkpoint).endswith(".tflite"):
            _compile_npu(args, args.checkpoint)
            return 0
    try:
        from ..train.export import export_tflite
    except ImportError as exc:
        raise ExportError(f"mtkseg export needs the train extra (pip install 'mtkseg[train]'): {exc}") from exc
    metrics = None
    if args.metrics:
        try:
            with open(args.metrics) as fh:
                metrics = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ExportError(f"--metrics {args.metrics}: cannot read JSON ({exc})") from exc
    res = export_tflite(
        args.checkpoint, args.output, quant=args.quant, calib_dir=args.calib, calib_split=args.calib_split,
        calib_count=args.calib_count, io_type=args.io_type, input_size=args.input_size, metrics=metrics,
        license_text=args.license_text, dataset_name=args.dataset_name, metadata=args.metadata,
        overwrite=args.overwrite, prior_correction=args.prior_correction,
    )
    ops = ", ".join(f"{k}x{v}" for k, v in sorted(res.ops.items()))
    print(f"wrote {res.model_path} ({res.size_bytes / 1e6:.2f} MB, {res.quant}, io {res.io_type}, "
          f"input {res.input_size[0]}x{res.input_size[1]}) and {res.sidecar_path}")
    print(f"weights: {res.weights_path}" + ("" if res.weights_path.name == "best.weights.h5" or
                                           str(args.checkpoint).endswith(".weights.h5") else
                                           "  (note: no best.weights.h5 in the run directory; exported the last epoch)"))
    print(f"ops: {ops}")
    if args.npu:
        _compile_npu(args, res.model_path)
    return 0
