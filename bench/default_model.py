"""The bundled default model against a reference model, side by side in one run.

    python bench/default_model.py --reference OLD.tflite [--model default] [--threads 2] [--rounds 7] [--write-results]

For both models: MACs counted from the .tflite (``mtkseg.runtime.compute``), file size, the
interpreter's ``invoke()`` alone, and ``Segmenter.run`` on a real 1280x720 dash-cam frame split
into pre / invoke / post with the SDK share (pre + post) / invoke.  Timings alternate between
the models in rounds (each round: 20 invokes of one, then of the other) and every ratio is the
median of the per-round ratios, so a noisy neighbour slows both alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import machine_line, write_section  # noqa: E402

import mtkseg  # noqa: E402
from mtkseg.runtime.compute import count_macs  # noqa: E402
from mtkseg.segmenter import default_model_path  # noqa: E402

CLIP = HERE.parents[1] / "shared" / "data" / "videos" / "udacity_lanelines_solidWhiteRight.mp4"


def real_frame_720p() -> np.ndarray:
    cap = cv2.VideoCapture(str(CLIP))
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"{CLIP}: cannot read a frame")
    return cv2.resize(frame, (1280, 720), interpolation=cv2.INTER_LINEAR)


def time_invoke(seg, n: int) -> float:
    """Median seconds of ``n`` bare invokes (the input tensor already filled by a run())."""
    session = seg._session  # noqa: SLF001 - the bench times the interpreter itself
    times = []
    for _ in range(n):
        t = time.perf_counter()
        session.invoke()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_run(seg, frame, n: int):
    """Median seconds of ``run()`` and of its pre / invoke / post stages (``Segmenter.timings``)."""
    total, pre, inf, post = [], [], [], []
    for _ in range(n):
        t = time.perf_counter()
        res = seg.run(frame)
        total.append(time.perf_counter() - t)
        pre.append(res.timings["pre"])
        inf.append(res.timings["infer"])
        post.append(res.timings["post"])
    return tuple(statistics.median(v) for v in (total, pre, inf, post))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--reference", required=True, help="the model to compare with (e.g. the previous default)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--write-results", action="store_true")
    ap.add_argument("--section", default="default-model", help="RESULTS.md section to write (one per thread count)")
    args = ap.parse_args()
    model = str(default_model_path()) if args.model == "default" else args.model
    paths = {"model": model, "reference": args.reference}
    frame = real_frame_720p()
    segs = {k: mtkseg.Segmenter(p, num_threads=args.threads) for k, p in paths.items()}
    for seg in segs.values():
        for _ in range(5):
            seg.run(frame)
    inv = {k: [] for k in segs}
    runs = {k: [] for k in segs}
    ratios = []
    for _ in range(args.rounds):
        for k, seg in segs.items():
            seg.run(frame)
            inv[k].append(time_invoke(seg, 20))
            runs[k].append(time_run(seg, frame, 10))
        ratios.append(inv["reference"][-1] / inv["model"][-1])
    lines = [f"`python bench/default_model.py --model {args.model} --reference {args.reference} "
             f"--threads {args.threads} --rounds {args.rounds}"
             + (f" --section {args.section}" if args.section != "default-model" else "") + " --write-results`", "",
             f"| model | GMACs (from .tflite) | size | invoke | run() {frame.shape[1]}x{frame.shape[0]} | pre | post "
             "| (pre+post)/invoke |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for k, p in paths.items():
        macs = count_macs(p)
        med = [statistics.median(r[i] for r in runs[k]) for i in range(4)]
        total, pre, inf, post = med[0] * 1e3, med[1], med[2], med[3]
        lines.append(f"| {Path(p).name} | {macs.gmacs:.3f} | {Path(p).stat().st_size / 1e6:.2f} MB | "
                     f"{1e3 * statistics.median(inv[k]):.2f} ms | {total:.2f} ms | {pre:.2f} ms | {post:.2f} ms | "
                     f"{100 * (pre + post) / inf:.1f} % |")
    lines += ["", f"invoke speed-up of {Path(model).name} over {Path(args.reference).name}: "
              f"**{statistics.median(ratios):.2f}x** (median of {args.rounds} per-round ratios; "
              f"range {min(ratios):.2f}-{max(ratios):.2f}), {args.threads} threads, XNNPACK.",
              "", f"Machine: {machine_line()}; frame: frame 0 of the lane-lines clip resized to "
              f"{frame.shape[1]}x{frame.shape[0]}."]
    text = "\n".join(lines)
    print(text)
    for seg in segs.values():
        seg.close()
    if args.write_results:
        title = "## Default model vs the previous one (`bench/default_model.py`)"
        if args.section != "default-model":
            title += f", {args.threads} thread{'s' if args.threads != 1 else ''}"
        write_section(args.section, title + "\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
