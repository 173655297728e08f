"""A model on an accelerator (GPU/NPU) against the CPU, on frames of the real dash-cam clip.

Measures, for ``Segmenter(accelerator=NAME)`` and ``Segmenter(delegate=NAME)`` (each may be
unavailable on a machine: the typed error is reported instead):

* what actually runs (``seg.delegate``) and what was skipped,
* median ``timings["infer"]`` on the accelerator and on the CPU (XNNPACK, all cores), the two
  runs alternating frame by frame,
* the share of mask pixels equal to the CPU's (accelerators often compute int8 graphs in
  floating point, so a small disagreement is expected),
* the fps of ``mtkseg.video.process`` on the accelerator (one worker: accelerators are not
  replicated).

Usage::

    python bench/accelerator.py                          # GPU, bundled model, real clip
    python bench/accelerator.py --name npu --model m.tflite --no-write

Writes the ``accelerator-NAME`` section of bench/RESULTS.md (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _results import machine_line, write_section  # noqa: E402

import mtkseg  # noqa: E402
from mtkseg import video  # noqa: E402

CLIP = ROOT.parent / "shared" / "data" / "videos" / "udacity_lanelines_solidWhiteRight.mp4"
WARMUP = 5  # untimed frames on each side before the timed ones


def compare(seg: mtkseg.Segmenter, cpu: mtkseg.Segmenter, frames: list) -> dict:
    for f in frames[:WARMUP]:
        seg.run(f), cpu.run(f)
    agree, t_acc, t_cpu = [], [], []
    for f in frames:
        a, b = seg.run(f), cpu.run(f)
        agree.append(float(np.mean(a.mask == b.mask)))
        t_acc.append(a.timings["infer"])
        t_cpu.append(b.timings["infer"])
    return {"agree_mean": float(np.mean(agree)), "agree_min": min(agree),
            "infer": statistics.median(t_acc), "infer_cpu": statistics.median(t_cpu)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", default="gpu", help="accelerator / delegate name (default gpu)")
    p.add_argument("--model", default=None, help="a .tflite model (default: the bundled one)")
    p.add_argument("--clip", type=Path, default=CLIP)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = p.parse_args(argv)
    if not args.clip.exists():
        print(f"clip not found: {args.clip}", file=sys.stderr)
        return 2
    frames = [f.image for _, f in zip(range(args.frames), video.open_source(args.clip))]
    cpu = mtkseg.Segmenter(args.model, delegate="cpu")
    rows = ["| how | runs on | infer median (accelerator / CPU) | masks equal to the CPU's | stream fps |",
            "|---|---|---|---|---|"]
    notes = []
    for label, spec in ((f'accelerator="{args.name}"', {"accelerator": args.name}),
                        (f'delegate="{args.name}"', {"delegate": args.name})):
        try:
            seg = mtkseg.Segmenter(args.model, **spec)
        except mtkseg.MtksegError as exc:
            message = " ".join(str(exc).replace("|", "/").split())[:200]
            line = f"| `{label}` | {type(exc).__name__}: {message} | - | - | - |"
            print(line, flush=True)
            rows.append(line)
            continue
        r = compare(seg, cpu, frames)
        stats = video.process(args.clip, seg)
        line = (f"| `{label}` | {seg.delegate} | **{r['infer']:.2f}** / {r['infer_cpu']:.2f} ms "
                f"(CPU: {cpu.num_threads} threads) | {100 * r['agree_mean']:.2f} % mean, "
                f"{100 * r['agree_min']:.2f} % worst frame | {stats.fps:.1f} ({stats.workers}) |")
        print(line, flush=True)
        rows.append(line)
        notes.append(f"`{label}` ({seg.backend}): {100 * (1 - r['agree_mean']):.2f} % of mask pixels differ from the "
                     f"CPU's on average, {100 * (1 - r['agree_min']):.2f} % on the worst frame.")
        seg.close()
    model = Path(cpu.info.path or "<bytes>")
    shown = model.relative_to(ROOT) if model.is_relative_to(ROOT) else model
    cmd = "python bench/accelerator.py" + (" " + shlex.join(sys.argv[1:] if argv is None else argv)
                                           if (argv or sys.argv[1:]) else "")
    md = "\n".join([
        f"## Accelerator `{args.name}` vs CPU (`bench/accelerator.py`)",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {machine_line()}, {cpu.backend}; model: `{shown}`; {len(frames)} frames of `{args.clip.name}` after "
        f"{WARMUP} warm-ups, accelerator and CPU alternating frame by frame.",
        "",
        *rows,
        *(["", " ".join(notes)] if notes else []),
    ])
    print(md)
    if not args.no_write:
        write_section(f"accelerator-{args.name}", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
