"""Video pipeline benchmark on the real 960x540 dash-cam clip.

Measures, in one run and on one model:

* **pipelined vs naive**: ``mtkseg.video.process(clip, seg, sink=VideoSink(...))`` (decode,
  segment and overlay+encode in three overlapping stages) against the naive loop
  ``read → seg.run → overlay → VideoWriter.write`` writing the same video.  Runs are
  interleaved and repeated; medians are compared.
* **invoke-only fps**: ``1000 / median(result.timings["infer"])`` of the same Segmenter on
  decoded frames (what one interpreter does with nothing else to do), and the aggregate fps of
  the pipeline's inference workers invoking side by side (its own ceiling).  Both are measured
  in every repeat, between the pipelined and the next naive run, and ratios are taken per
  repeat (a shared machine drifts).
* **live mode**: frames dropped when the clip is played as a 25 fps camera (``live=True``,
  paced at the clip's frame rate) and as a camera faster than inference (``realtime=False``).
* **flicker**: share of pixels whose class changes between consecutive frames, without
  smoothing, with ``smoothing="ema"`` and with ``smoothing="mode3"``.

Usage::

    python bench/video.py                       # default model if present, else the int8 fixture
    python bench/video.py --model tests/fixtures/models/int8_io.tflite --repeats 5 --threads 1

Writes the ``video`` section of bench/RESULTS.md (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _results import machine_line, write_section  # noqa: E402

from mtkseg import video  # noqa: E402
from mtkseg.segmenter import Segmenter  # noqa: E402
from mtkseg.video.engines import plan_workers  # noqa: E402

CLIP = ROOT.parent / "shared" / "data" / "videos" / "udacity_lanelines_solidWhiteRight.mp4"
def _default_model() -> Path:
    from mtkseg.segmenter import default_model_path

    found = default_model_path()
    return Path(found) if found is not None else FIXTURE_MODEL


DEFAULT_MODEL = None  # resolved at run time: the bundled default model
FIXTURE_MODEL = ROOT / "tests" / "fixtures" / "models" / "int8_io.tflite"


class CpuMeter:
    """Process CPU time (all threads) and the machine's busy share over a block."""

    def __enter__(self) -> "CpuMeter":
        self.cpu0, self.sys0 = time.process_time(), self._stat()
        return self

    @staticmethod
    def _stat() -> tuple:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + values[4]
        return sum(values), idle

    def __exit__(self, *exc) -> None:
        self.cpu_s = time.process_time() - self.cpu0
        total1, idle1 = self._stat()
        total = total1 - self.sys0[0]
        self.machine_busy = 1.0 - (idle1 - self.sys0[1]) / total if total else 0.0


NAIVE_STAGES = {"read": [], "run": [], "write": []}


def naive(seg, clip: Path, out: Path, fourcc: str) -> float:
    """The obvious single-threaded loop; returns frames per second (and records the time of
    its three steps per frame in ``NAIVE_STAGES``)."""
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS)
    writer = None
    n = 0
    t0 = time.perf_counter()
    while True:
        ta = time.perf_counter()
        ok, frame = cap.read()
        if not ok:
            break
        tb = time.perf_counter()
        result = seg.run(frame)
        tc = time.perf_counter()
        image = result.overlay(frame, alpha=0.5)
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*fourcc), fps, (image.shape[1], image.shape[0]))
            if not writer.isOpened():
                raise SystemExit(f"naive loop: cv2.VideoWriter cannot write {fourcc!r} to {out}")
        writer.write(image)
        td = time.perf_counter()
        NAIVE_STAGES["read"].append(tb - ta)
        NAIVE_STAGES["run"].append(tc - tb)
        NAIVE_STAGES["write"].append(td - tc)
        n += 1
    writer.release()
    cap.release()
    return n / (time.perf_counter() - t0)


def pipelined(seg, clip: Path, out: Path) -> tuple:
    # OpenCV's mp4v on both sides: the naive loop can only use cv2.VideoWriter, and the comparison is
    # about overlapping the stages, not about the encoder (H.264 through PyAV costs ~2x the CPU per frame)
    sink = video.VideoSink(out, codec="mp4v")
    stats = video.process(clip, seg, sink=sink)
    return stats.fps, sink.fourcc, stats


def decoded_frames(clip: Path, n: int = 20) -> list:
    return [f.image for _, f in zip(range(n), video.open_source(clip))]


def invoke_only(seg, frames: list, n: int = 60) -> tuple:
    """Median ``timings['infer']`` and ``run()`` time of ``seg`` alone (ms)."""
    for f in frames[:5]:
        seg.run(f)
    infer, run = [], []
    for i in range(n):
        t0 = time.perf_counter()
        r = seg.run(frames[i % len(frames)])
        run.append((time.perf_counter() - t0) * 1000)
        infer.append(r.timings["infer"])
    return statistics.median(infer), statistics.median(run)


def workers_invoke_only(seg, frames: list, workers: int, threads: int, seconds: float = 2.0) -> float:
    """Aggregate fps of ``workers`` interpreters (``threads`` each) invoking side by side with
    nothing else running: the ceiling of a pipeline with that many workers."""
    runners = seg.replicas(workers, threads) if workers > 1 else [seg]
    prepared = [seg.prepare(f) for f in frames]
    counts = [0] * len(runners)
    barrier = threading.Barrier(len(runners) + 1)
    stop = threading.Event()

    def loop(k: int) -> None:
        runner = runners[k]
        runner.infer(prepared[0])
        barrier.wait()
        while not stop.is_set():
            runner.infer(prepared[counts[k] % len(prepared)])
            counts[k] += 1

    threads_ = [threading.Thread(target=loop, args=(k,)) for k in range(len(runners))]
    for t in threads_:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads_:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=None, help="default: the bundled default model if present, else the int8 fixture")
    p.add_argument("--clip", type=Path, default=CLIP)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="Segmenter num_threads (default: the Segmenter's)")
    p.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    p.add_argument("--section", default="video", help="RESULTS.md section to write (default: video)")
    p.add_argument("--title", default="", help="text added to the section's heading, e.g. the machine")
    args = p.parse_args(argv)
    model = args.model or _default_model()
    probe = cv2.VideoCapture(str(args.clip))
    clip_w, clip_h = int(probe.get(cv2.CAP_PROP_FRAME_WIDTH)), int(probe.get(cv2.CAP_PROP_FRAME_HEIGHT))
    clip_fps, clip_frames = probe.get(cv2.CAP_PROP_FPS), int(probe.get(cv2.CAP_PROP_FRAME_COUNT))
    probe.release()
    if not args.clip.exists():
        print(f"clip not found: {args.clip}", file=sys.stderr)
        return 2
    seg = Segmenter(str(model), num_threads=args.threads)
    load0 = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="mtkseg-bench-video-"))

    frames = decoded_frames(args.clip)
    infer_ms, run_ms = invoke_only(seg, frames)
    print(f"model {model.name}: invoke {infer_ms:.2f} ms ({1000 / infer_ms:.1f} fps), run() {run_ms:.2f} ms", flush=True)

    # Warm both paths once (codec probing, allocations, the pipeline's interpreter replicas),
    # then interleave the timed runs: naive, pipelined, invoke-only, worker ceiling.
    _, fourcc, warm_stats = pipelined(seg, args.clip, tmp / "warm.mp4")
    plan = warm_stats.workers
    n_workers, n_threads = plan_workers(seg, False, None)
    naive(seg, args.clip, tmp / "warm_naive.mp4", fourcc)
    for samples in NAIVE_STAGES.values():
        samples.clear()
    naive_fps, piped_fps, invoke_fps_runs, ceiling_fps = [], [], [], []
    naive_cpu, piped_cpu, naive_busy, piped_busy = [], [], [], []
    last_stats = None
    n_frames = clip_frames
    for r in range(args.repeats):
        with CpuMeter() as m:
            naive_fps.append(naive(seg, args.clip, tmp / "naive.mp4", fourcc))
        naive_cpu.append(m.cpu_s * 1000 / n_frames)
        naive_busy.append(m.machine_busy)
        with CpuMeter() as m:
            fps, _, last_stats = pipelined(seg, args.clip, tmp / "piped.mp4")
        n_frames = last_stats.frames_processed
        piped_cpu.append(m.cpu_s * 1000 / n_frames)
        piped_busy.append(m.machine_busy)
        piped_fps.append(fps)
        invoke_fps_runs.append(1000.0 / invoke_only(seg, frames)[0])
        ceiling_fps.append(workers_invoke_only(seg, frames, n_workers, n_threads or seg.num_threads)
                           if n_workers > 1 else invoke_fps_runs[-1])
        print(f"repeat {r}: naive {naive_fps[-1]:.1f} fps ({naive_cpu[-1]:.1f} CPU-ms/frame, machine "
              f"{100 * naive_busy[-1]:.0f} % busy), pipelined {piped_fps[-1]:.1f} fps ({piped_cpu[-1]:.1f} CPU-ms/frame, "
              f"machine {100 * piped_busy[-1]:.0f} % busy, {plan}), invoke-only {invoke_fps_runs[-1]:.1f} fps, "
              f"{n_workers} workers invoking {ceiling_fps[-1]:.1f} fps", flush=True)
    invoke_fps = statistics.median(invoke_fps_runs)
    infer_ms = 1000.0 / invoke_fps
    ratio_naive = statistics.median(p / n for p, n in zip(piped_fps, naive_fps))
    ratio_invoke = statistics.median(p / i for p, i in zip(piped_fps, invoke_fps_runs))
    ratio_ceiling = statistics.median(p / c for p, c in zip(piped_fps, ceiling_fps))
    naive_med, piped_med = statistics.median(naive_fps), statistics.median(piped_fps)
    step_ms = {k: 1000 * float(np.mean(v)) for k, v in NAIVE_STAGES.items()}
    bound = sum(step_ms.values()) / max(step_ms.values())
    frames_out = int(cv2.VideoCapture(str(tmp / "piped.mp4")).get(cv2.CAP_PROP_FRAME_COUNT))

    live_rt = video.stream(seg, args.clip, live=True)
    list(live_rt)
    live_fast = video.stream(seg, args.clip, live=True, realtime=False)
    list(live_fast)

    # Flicker without / with smoothing, and how far each smoothed mask is from the raw one
    # (what smoothing costs: lag at moving edges).
    raw_masks = []
    default_momentum = video.EMASmoother().momentum  # smoothing="ema" without ema_momentum
    modes = [("none", None, None), (f"ema {default_momentum:g}", "ema", None), ("ema 0.8", "ema", 0.8),
             ("mode3", "mode3", None)]
    flicker, changed, smooth_ms, smooth_fps = {}, {}, {}, {}
    for label, mode, momentum in modes:
        diffs = []

        def compare(frame, result, diffs=diffs, mode=mode):
            if mode is None:
                raw_masks.append(result.mask.copy())
            else:
                diffs.append(video.flicker(raw_masks[len(diffs)], result.mask))

        st = video.process(args.clip, seg, callback=compare, smoothing=mode, ema_momentum=momentum)
        flicker[label] = st.flicker
        smooth_fps[label] = st.fps
        changed[label] = float(np.mean(diffs)) if diffs else 0.0
        pct = st.percentiles("smooth")
        smooth_ms[label] = pct["p50"] if pct else None
    load1 = os.getloadavg()

    lat = last_stats.latency()
    cmd = "python bench/video.py" + ("" if argv is None and len(sys.argv) == 1 else " " + shlex.join(sys.argv[1:] if argv is None else argv))
    rows = [
        "| measure | value |",
        "|---|---|",
        f"| invoke-only: the Segmenter's one interpreter ({seg.num_threads} threads), median `timings['infer']` | "
        f"{infer_ms:.2f} ms → **{invoke_fps:.1f} fps** (runs: {', '.join(f'{v:.1f}' for v in invoke_fps_runs)}) |",
        f"| pipeline workers (automatic) | {plan} |",
        f"| invoke-only of those workers side by side (the pipeline's own ceiling) | {statistics.median(ceiling_fps):.1f} fps "
        f"(runs: {', '.join(f'{v:.1f}' for v in ceiling_fps)}) |",
        f"| full `Segmenter.run` on decoded frames | {run_ms:.2f} ms → {1000 / run_ms:.1f} fps (before the runs) |",
        f"| naive read → run → overlay → write loop | {naive_med:.1f} fps (runs: {', '.join(f'{v:.1f}' for v in naive_fps)}) |",
        f"| pipelined `video.process(..., sink=VideoSink)` | {piped_med:.1f} fps (runs: {', '.join(f'{v:.1f}' for v in piped_fps)}) |",
        f"| CPU time per frame, naive / pipelined (all threads) | {statistics.median(naive_cpu):.1f} / "
        f"{statistics.median(piped_cpu):.1f} ms |",
        f"| whole machine busy during naive / pipelined runs | {100 * statistics.median(naive_busy):.0f} % / "
        f"{100 * statistics.median(piped_busy):.0f} % of {os.cpu_count()} cores |",
        f"| naive loop, mean ms per step: read / run / overlay+write | {step_ms['read']:.1f} / {step_ms['run']:.1f} / "
        f"{step_ms['write']:.1f} → what overlapping these steps alone could give (sum / largest step): {bound:.2f}x |",
        f"| **pipelined / naive** (median of per-run ratios) | **{ratio_naive:.2f}x** (target ≥ 1.3x) |",
        f"| **pipelined / invoke-only** (median of per-run ratios) | **{ratio_invoke:.2f}** (target ≥ 0.9) |",
        f"| pipelined / its workers' invoke-only ceiling | {ratio_ceiling:.2f} |",
        "| pipelined stage p50 ms (read / pre / infer / post / write / end-to-end latency) | "
        + " / ".join(f"{lat[k]['p50']:.1f}" if k in lat else "-"
                     for k in ("read", "pre", "infer", "post", "write", "latency")) + " |",
        f"| frames in the pipelined output video | {frames_out} of {last_stats.frames_read} ({fourcc}) |",
        f"| live, clip paced as a {clip_fps:g} fps camera | {live_rt.stats.frames_processed} processed, "
        f"**{live_rt.stats.frames_dropped} dropped** of {live_rt.stats.frames_read}; latency p50 "
        f"{live_rt.stats.percentiles('latency')['p50']:.1f} ms |",
        f"| live, camera faster than inference (no pacing) | {live_fast.stats.frames_processed} processed, "
        f"**{live_fast.stats.frames_dropped} dropped** of {live_fast.stats.frames_read}; latency p50 "
        f"{live_fast.stats.percentiles('latency')['p50']:.1f} ms |",
        *[
            f"| flicker, {'no smoothing' if label == 'none' else f'smoothing {label}'} | **{100 * flicker[label]:.2f} %** of "
            f"pixels change class per frame"
            + ("" if label == "none" else f" ({flicker[label] / flicker['none']:.2f}x); {100 * changed[label]:.2f} % of "
               f"pixels differ from the unsmoothed mask")
            + (f"; mask step {smooth_ms[label]:.2f} ms/frame" if smooth_ms[label] is not None else "")
            + f"; {smooth_fps[label]:.1f} fps without a sink |"
            for label, _, _ in modes
        ],
    ]
    busy = statistics.median(piped_busy)
    cpu_n, cpu_p = statistics.median(naive_cpu), statistics.median(piped_cpu)
    note = (
        f"Reading the numbers: the naive loop needs {cpu_n:.1f} ms of CPU per frame and the pipeline "
        f"{cpu_p:.1f} ms (the same decode, inference, overlay and encode work, done concurrently; the pipeline's "
        f"workers are {plan}).  The pipeline kept the machine {100 * busy:.0f} % busy"
        + (", so with this model and codec it is bound by the CPU: more throughput needs less work per frame, "
           "not more overlap." if busy >= 0.93 else ".")
    )
    md = "\n".join([
        "## Video pipeline (`bench/video.py`)" + (f" — {args.title}" if args.title else ""),
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {machine_line()}; load average {load0[0]:.1f} → {load1[0]:.1f} during the run "
        "(a shared machine: absolute fps are noisy; ratios come from interleaved runs).  ",
        f"Model: `{model.relative_to(ROOT) if model.is_relative_to(ROOT) else model}` (threads: "
        f"{args.threads if args.threads is not None else 'Segmenter default'}); clip: `{args.clip.name}` "
        f"({clip_w}x{clip_h}, {clip_frames} frames, {clip_fps:g} fps); median of {args.repeats} interleaved runs (naive, pipelined, invoke-only, "
        "workers' invoke-only in turn).",
        "",
        *rows,
        "",
        note,
    ])
    print(md)
    if not args.no_write:
        write_section(args.section, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
