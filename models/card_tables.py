"""Print the model card's result tables from the committed eval JSONs (so the card cites a command).

    python models/card_tables.py models/checkpoints/camvid-lite0 [--reference DIR [--reference DIR ...]]

Reads ``eval-{float32,int8}-{val,test}.json`` written by ``mtkseg eval --json`` (models/rebuild.sh)
and prints the per-class IoU table (val/test x float32/int8, int8 - float32 on test) and the
summary rows; each ``--reference NAME=DIR`` (or DIR) adds a column with that model's int8 test IoU.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load(run: Path, quant: str, split: str) -> dict:
    path = run / f"eval-{quant}-{split}.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing (run models/rebuild.sh or mtkseg eval --json)")
    return json.loads(path.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--reference", action="append", default=[], metavar="[NAME=]DIR")
    args = ap.parse_args()
    ev = {(q, s): load(args.run, q, s) for q in ("float32", "int8") for s in ("val", "test")}
    refs = []
    for spec in args.reference:
        name, _, folder = spec.rpartition("=")
        refs.append((name or Path(folder).name, load(Path(folder), "int8", "test")))
    names = list(ev["int8", "test"]["iou"])
    head = "| class | val float32 | val int8 | test float32 | test int8 | test int8 - float32 |"
    sep = "|---|---:|---:|---:|---:|---:|"
    for name, _ in refs:
        head += f" test int8, {name} |"
        sep += "---:|"
    print(head)
    print(sep)

    def row(label, get, bold=False):
        vals = [100 * get(ev[k]) for k in (("float32", "val"), ("int8", "val"), ("float32", "test"), ("int8", "test"))]
        cells = [f"{v:.1f}" for v in vals] + [f"{vals[3] - vals[2]:+.1f}"]
        if bold:
            cells[3] = f"**{cells[3]}**"
        line = f"| {label} | " + " | ".join(cells) + " |"
        for _, ref in refs:
            line += f" {100 * get(ref):.1f} |"
        print(line)

    for name in names:
        row(name, lambda d, n=name: d["iou"][n])
    row("**mIoU**", lambda d: d["miou"], bold=True)
    row("pixel accuracy", lambda d: d["pixel_accuracy"])
    row("mean class accuracy", lambda d: d["mean_class_accuracy"])
    print()
    t = ev["int8", "test"]
    print(f"int8 test: {t['num_images']} images, {t['ms_per_image']:.1f} ms/image end to end in `mtkseg eval`.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
