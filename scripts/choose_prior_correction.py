"""Choose ``mtkseg export --prior-correction ALPHA`` for a run on a held-out split.

A model trained with class-weighted cross-entropy over-predicts the up-weighted (rare) classes:
its logits carry roughly ``log(w_c)`` extra.  Subtracting ``alpha * log(w_c)`` takes back part of
that.  This script runs the run's float Keras model on one split (resized to the run's input size
as the Segmenter does), maps the argmax to the native masks with the Segmenter's default
nearest-neighbour resize, and prints the dataset mIoU for each ``alpha``.  Pick alpha on a split the
run did not train on (``val`` for a run trained on ``train``), then export with it.

    python scripts/choose_prior_correction.py runs/camvid-lite0 --split val --json alpha.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="run directory (best.weights.h5) or a *.weights.h5 next to config.json")
    ap.add_argument("--data", default=None, help="dataset root (default: the run's)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--alphas", default="0,0.25,0.5,0.75,1", help="comma-separated values in [0, 1]")
    ap.add_argument("--json", default=None, help="write the table here")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import cv2

    from mtkseg.data import SegmentationDataset, resize_image
    from mtkseg.metrics import ConfusionMatrix
    from mtkseg.train.export import prior_correction_offsets, resolve_checkpoint
    from mtkseg.train.loop import configure_threads, load_run_config, model_from_config, split_names

    weights, config_path = resolve_checkpoint(args.checkpoint)
    cfg, _ = load_run_config(config_path)
    if args.split in split_names(cfg.train_split):
        print(f"warning: the run trained on '{args.split}'; alpha chosen there is optimistic", file=sys.stderr)
    class_weights = json.loads(Path(config_path).read_text()).get("class_weights")
    if class_weights is None:
        raise SystemExit(f"{config_path}: the run has no class weights; there is nothing to correct")
    alphas = [float(a) for a in args.alphas.split(",")]
    configure_threads(args.threads)
    model = model_from_config(cfg, int(cfg.num_classes))
    model.load_weights(str(weights))
    ds = SegmentationDataset(args.data or cfg.data, args.split)
    images, masks = ds.load_all()
    size = tuple(cfg.input_size)
    x = np.stack([resize_image(im, size) for im in images]).astype(np.float32) / 255.0
    logits = model.predict(x, batch_size=8, verbose=0)
    rows = []
    for alpha in alphas:
        offsets = prior_correction_offsets(class_weights, alpha)
        cm = ConfusionMatrix(int(cfg.num_classes), ds.classes.ignore_index, ds.classes.names)
        for lg, gt in zip(logits, masks):
            pred = np.argmax(lg + offsets, axis=-1).astype(np.uint8)
            cm.update(gt, cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_NEAREST))
        res = cm.results()
        rows.append({"alpha": alpha, "miou": res.miou, "pixel_accuracy": res.pixel_accuracy})
        print(f"alpha {alpha:.2f}  mIoU {100 * res.miou:.2f}  pixel acc {100 * res.pixel_accuracy:.2f}")
    best = max(rows, key=lambda r: r["miou"])
    print(f"best alpha on {args.split}: {best['alpha']:.2f} (mIoU {100 * best['miou']:.2f})")
    if args.json:
        doc = {"checkpoint": str(weights), "split": args.split, "rows": rows, "best_alpha": best["alpha"]}
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
