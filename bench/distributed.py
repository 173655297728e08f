"""Ray scale-out benchmark: frames/s of ``mtkseg.distributed.segment`` with 1 and with 2 actors
(1 CPU and 1 interpreter thread each) on this machine, measured side by side in one run.

One local Ray cluster (``--cpus``, default 2) serves every run; 1-actor and 2-actor runs are
interleaved ``--repeats`` times on the same images (CamVid test images, 960x720, the bundled
model) and medians are compared.  Two rates per run: *steady* (after the first batch is out:
what a long job sees) and *wall* (actor start-up and model loading included).

Usage::

    python bench/distributed.py                          # 48 CamVid images, 3 repeats
    python bench/distributed.py --images 96 --repeats 5 --model tests/fixtures/models/int8_io.tflite

Writes the ``distributed`` section of bench/RESULTS.md (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _results import machine_line, write_section  # noqa: E402

from mtkseg import distributed  # noqa: E402

IMAGES = ROOT.parent / "shared" / "data" / "camvid" / "images" / "test"
def _default_model() -> Path:
    from mtkseg.segmenter import default_model_path

    found = default_model_path()
    if found is None:
        raise SystemExit("the bundled default model is missing from models/; pass --model")
    return Path(found)


def load_average() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def one_run(model: Path, images: list, workers: int, out: Path) -> distributed.RunReport:
    return distributed.segment(model, images, out, workers=workers, cpus_per_worker=1, overwrite=True,
                               parquet=False, progress=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="default: the bundled default model")
    ap.add_argument("--images", type=int, default=48, help="CamVid test images per run (default 48)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster (default 2)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    args.model = args.model or _default_model()
    images = sorted(IMAGES.glob("*.png"))[: args.images]
    if not images:
        print(f"no images under {IMAGES} (../shared/data/camvid is needed)", file=sys.stderr)
        return 1
    ray = distributed.require_ray()
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING")
    load_before = load_average()
    results: dict = {1: [], 2: []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeats):
                for workers in (1, 2) if r % 2 == 0 else (2, 1):  # alternate who goes first
                    rep = one_run(args.model, images, workers, Path(tmp) / f"w{workers}")
                    assert rep.frames == len(images) and not rep.failures, rep.failures
                    results[workers].append(rep)
                    print(f"repeat {r + 1}: {workers} actor(s): steady {rep.steady_frames_per_second:.1f} frames/s, "
                          f"wall {rep.frames_per_second:.1f} frames/s (start-up {rep.startup_seconds:.1f} s)")
    finally:
        ray.shutdown()
    load_after = load_average()
    steady = {w: statistics.median(r.steady_frames_per_second for r in reps) for w, reps in results.items()}
    wall = {w: statistics.median(r.frames_per_second for r in reps) for w, reps in results.items()}
    startup = {w: statistics.median(r.startup_seconds for r in reps) for w, reps in results.items()}
    infer = {w: statistics.median(v for r in reps for v in r.table.column("infer_ms").to_pylist())
             for w, reps in results.items()}
    ratio_steady, ratio_wall = steady[2] / steady[1], wall[2] / wall[1]
    print(f"2 actors / 1 actor: steady {ratio_steady:.2f}x, wall {ratio_wall:.2f}x")
    command = "python bench/distributed.py " + shlex.join(sys.argv[1:])
    import cv2  # only for the images' size in the text

    first = cv2.imread(str(images[0]), cv2.IMREAD_UNCHANGED)
    size = f"{first.shape[1]}x{first.shape[0]}" if first is not None else "size unknown"
    cpus_per_actor = results[1][0].cpus_per_worker
    md = f"""## Ray scale-out (`bench/distributed.py`)

Command: `{command.strip()}` — {machine_line()}, Ray {ray.__version__}; a local Ray cluster of {args.cpus} CPUs,
model `{args.model.name}`, {len(images)} CamVid test images ({size}) per run, masks written; 1- and 2-actor runs
interleaved {args.repeats}x, medians. Each actor: {cpus_per_actor} CPU(s) = interpreter thread(s). Load average (1/5/15 min)
{load_before} before, {load_after} after (a shared machine: compare the ratio).

| actors | steady frames/s | wall frames/s | start-up s | median infer ms |
|---:|---:|---:|---:|---:|
| 1 | {steady[1]:.1f} | {wall[1]:.1f} | {startup[1]:.1f} | {infer[1]:.1f} |
| 2 | {steady[2]:.1f} | {wall[2]:.1f} | {startup[2]:.1f} | {infer[2]:.1f} |

**2 actors / 1 actor: {ratio_steady:.2f}x steady, {ratio_wall:.2f}x wall.** Steady = after the first batch is
out; wall includes starting the actors and loading the model.
"""
    if not args.no_write:
        write_section("distributed", md)
        print("wrote the distributed section of bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
