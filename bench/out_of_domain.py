"""Out-of-domain check: how much of each hand-labelled region of a real dash-cam clip a model gets right.

The regions (clear sky, asphalt, car bodies in frames of the MIT-licensed Udacity lane-lines
clip) are in ``tests/fixtures/lanelines_regions.json``; ``tests/test_out_of_domain.py`` asserts
the bundled model's shares.  This script prints the table for any number of models and can
save the overlays it scored.

    python bench/out_of_domain.py default [OLD.tflite ...] [--clip PATH] [--save DIR] [--write-results]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

REGIONS = ROOT / "tests" / "fixtures" / "lanelines_regions.json"
CLIP = ROOT.parent / "shared" / "data" / "videos" / "udacity_lanelines_solidWhiteRight.mp4"


def read_frames(clip: Path, wanted):
    cap = cv2.VideoCapture(str(clip))
    if not cap.isOpened():
        raise SystemExit(f"{clip}: cannot open the clip")
    frames, i = {}, 0
    while len(frames) < len(wanted):
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            frames[i] = frame
        i += 1
    cap.release()
    missing = sorted(set(wanted) - set(frames))
    if missing:
        raise SystemExit(f"{clip}: frames {missing} not found")
    return frames


def region_shares(segmenter, frames, regions):
    """``[(region, share of its pixels labelled with its class, dominant wrong class)]``."""
    masks = {i: segmenter.run(frame).mask for i, frame in frames.items()}
    names = list(segmenter.class_names)
    out = []
    for r in regions:
        x0, y0, x1, y1 = r["box"]
        cls = names.index(r["class"])
        patch = masks[r["frame"]][y0:y1, x0:x1]
        counts = np.bincount(patch.ravel(), minlength=len(names))
        share = counts[cls] / patch.size
        counts[cls] = 0
        other = names[int(np.argmax(counts))] if counts.any() else "-"
        out.append((r, float(share), other))
    return out, masks


def main() -> int:
    import mtkseg

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="'default' or .tflite paths")
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--save", type=Path, default=None, help="write overlays of the scored frames here")
    ap.add_argument("--write-results", action="store_true", help="update the out-of-domain section of bench/RESULTS.md")
    args = ap.parse_args()
    spec = json.loads(REGIONS.read_text())
    frames = read_frames(args.clip, {r["frame"] for r in spec["regions"]})
    lines = [f"`python bench/out_of_domain.py {' '.join(args.models)}` — share of each hand-labelled region "
             f"({REGIONS.relative_to(ROOT)}) given its class; pass mark {spec['min_share']:.0%}", ""]
    header = "| frame | class | box | " + " | ".join(Path(m).name for m in args.models) + " |"
    lines += [header, "|---:|---|---|" + "---:|" * len(args.models)]
    results = []
    for model in args.models:
        with mtkseg.Segmenter(model, num_threads=2, color="bgr") as seg:
            shares, masks = region_shares(seg, frames, spec["regions"])
            results.append(shares)
            if args.save is not None:
                args.save.mkdir(parents=True, exist_ok=True)
                for i, frame in frames.items():
                    res = seg.run(frame)
                    cv2.imwrite(str(args.save / f"{Path(model).stem}_frame{i:03d}.png"), res.overlay())
    for k, r in enumerate(spec["regions"]):
        cells = [f"{100 * res[k][1]:.1f} %" + ("" if res[k][1] >= spec["min_share"] else f" ({res[k][2]})")
                 for res in results]
        lines.append(f"| {r['frame']} | {r['class']} | {r['box']} | " + " | ".join(cells) + " |")
    passed = [sum(s >= spec["min_share"] for _, s, _ in res) for res in results]
    lines.append("| | **regions passed** | | " + " | ".join(f"**{p} / {len(spec['regions'])}**" for p in passed) + " |")
    lines.append("")
    lines.append("In brackets: the class most of the rest of a failed region got.")
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        from _results import machine_line, write_section

        write_section("out-of-domain", "## Out-of-domain regions (`bench/out_of_domain.py`)\n\n" + text
                      + f"\n\nMachine: {machine_line()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
