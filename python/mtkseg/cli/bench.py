"""``mtkseg bench``: median ``Segmenter.run`` time split into pre / infer / post.

Examples::

    mtkseg bench model.tflite                        # synthetic 720x1280 frame, all cores
    mtkseg bench model.tflite --image street.png --threads 1,2,4 --runs 50
"""

from __future__ import annotations

import argparse
import json
from typing import Dict, List

from ._types import positive_int, size_hw
from .run import add_runtime_arguments, resolve_model, segmenter_options

HELP = "time Segmenter.run (pre / infer / post) on a synthetic or given frame"


def _thread_list(text: str) -> List[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected thread counts such as 1,2,4, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive thread counts such as 1,2,4, got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="a .tflite segmentation model, or 'default' for the bundled one")
    p.add_argument("--image", default=None, help="time this image instead of a synthetic frame")
    p.add_argument("--size", type=size_hw, default=(720, 1280), metavar="HxW",
                   help="size of the synthetic frame (default 720x1280)")
    p.add_argument("--runs", type=positive_int, default=30, help="timed runs per thread count (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    p.add_argument("--upsample", choices=("nearest", "bilinear"), default="nearest",
                   help="how the mask is resized to the frame: nearest (default) or bilinear (smoother edges)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_runtime_arguments(p)
    # --threads takes a list here: one row per thread count.
    for action in p._actions:
        if action.dest == "threads":
            action.type = _thread_list
            action.help = "thread counts to compare, e.g. 1,2 (default: all usable cores)"


def synthetic_frame(size, seed: int = 0):
    """A smooth random BGR frame (blobs plus noise) of ``size`` (h, w)."""
    import cv2
    import numpy as np

    h, w = size
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 32), max(2, w // 32), 3)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 6, (h, w, 3))
    return np.clip(big, 0, 255).astype(np.uint8)


def measure(seg, frame, runs: int, warmup: int) -> Dict[str, float]:
    """Median milliseconds of pre / infer / post / total over ``runs`` calls of ``seg.run``."""
    import numpy as np

    for _ in range(max(0, warmup)):
        seg.run(frame)
    rows = [seg.run(frame).timings for _ in range(runs)]
    med = {k: float(np.median([r[k] for r in rows])) for k in ("pre", "infer", "post")}
    med["total"] = float(np.median([r["pre"] + r["infer"] + r["post"] for r in rows]))
    med["overhead"] = (med["pre"] + med["post"]) / med["infer"] if med["infer"] > 0 else float("nan")
    return med


def handler(args: argparse.Namespace) -> int:
    from ..errors import FrameError

    if args.image is not None:
        import cv2

        frame = cv2.imread(args.image, cv2.IMREAD_COLOR)
        if frame is None:
            raise FrameError(f"--image: cannot read {args.image}")
    else:
        frame = synthetic_frame(args.size)
    from ..segmenter import Segmenter

    # One options object; each --threads value is a copy of it with num_threads changed.
    options = segmenter_options(args, model=resolve_model(args.model), num_threads=None, upsample=args.upsample)
    rows = []
    for threads in args.threads or [None]:
        with Segmenter(options=options.replace(num_threads=threads)) as seg:
            med = measure(seg, frame, args.runs, args.warmup)
            rows.append({"threads": seg.num_threads, "backend": seg.backend, "delegate": seg.delegate, **med})
    if args.json:
        print(json.dumps({"model": args.model, "frame": list(frame.shape[:2]), "runs": args.runs, "rows": rows}, indent=2))
        return 0
    print(f"{args.model}: frame {frame.shape[0]}x{frame.shape[1]}, {args.runs} runs, {rows[0]['backend']}, "
          f"{rows[0]['delegate']}; medians in ms")
    print(f"{'threads':>7} {'pre':>8} {'infer':>8} {'post':>8} {'total':>8} {'(pre+post)/infer':>17}")
    for r in rows:
        print(f"{r['threads']:>7} {r['pre']:>8.2f} {r['infer']:>8.2f} {r['post']:>8.2f} {r['total']:>8.2f} "
              f"{r['overhead'] * 100:>16.1f}%")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help=HELP, description=HELP + ".")
    add_arguments(p)
    p.set_defaults(func=handler)
