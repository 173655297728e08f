"""What would a larger input (or a shallower encoder) buy?  Score a run's float model at other sizes.

Runs the run's float Keras model on one split at each ``HxW[:BLOCKS]`` given: the same weights
rebuilt at input size ``HxW`` (the network is fully convolutional), optionally with the listed
residual EfficientNet-Lite blocks left out (identity: they add to their input, so the model stays
valid; the other layers keep their trained weights, copied by name).  Nothing is fine-tuned, so a
dropped block's cost is an upper bound of what fine-tuning would have to win back.  Prints the
GMACs (counted from the Keras graph) and the dataset mIoU with the run's prior correction, for
the Segmenter's nearest and bilinear upsampling of the logits to the native masks.

    python scripts/input_size_sweep.py runs/camvid-lite0-lovasz-train/last.weights.h5 \\
        288x384 320x416 352x480 320x416:13,14 --alpha 0.5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np


def parse_spec(spec: str):
    size, _, blocks = spec.partition(":")
    try:
        h, w = (int(v) for v in size.lower().split("x"))
        drop = frozenset(int(b) for b in blocks.split(",") if b)
    except ValueError:
        raise SystemExit(f"{spec!r}: expected HxW or HxW:BLOCK,BLOCK (e.g. 320x416:13,14)") from None
    return (h, w), drop


def build_variant(cfg, size, drop, trained):
    """The run's model rebuilt at ``size`` with the residual encoder blocks ``drop`` left out,
    every layer's weights copied by name from ``trained`` (the run's model, weights loaded)."""
    from mtkseg.train import efficientnet_lite
    from mtkseg.train.loop import model_from_config

    all_blocks = efficientnet_lite._blocks
    known = {b.index: b for b in all_blocks(cfg.arch.split("-")[0])}
    for index in sorted(drop):
        b = known.get(index)
        if b is None or b.stride != 1 or b.cin != b.cout:
            raise SystemExit(f"block {index} is not a residual (stride-1, same-width) encoder block")
    # the encoder is built from _blocks(): leave the dropped ones out while this model is built
    efficientnet_lite._blocks = lambda v: [b for b in all_blocks(v) if b.index not in drop]
    try:
        model = model_from_config(dataclasses.replace(cfg, input_size=tuple(size)), int(cfg.num_classes))
    finally:
        efficientnet_lite._blocks = all_blocks
    by_name = {layer.name: layer for layer in trained.layers if layer.weights}
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(by_name[layer.name].get_weights())
    return model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="a *.weights.h5 next to its run's config.json, or the run directory")
    ap.add_argument("specs", nargs="+", help="HxW or HxW:BLOCK,BLOCK (residual encoder blocks to leave out)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--alpha", type=float, default=0.0, help="prior correction (as mtkseg export --prior-correction)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    specs = [parse_spec(s) for s in args.specs]

    import cv2

    from mtkseg.data import SegmentationDataset, resize_image
    from mtkseg.metrics import ConfusionMatrix
    from mtkseg.train.export import prior_correction_offsets, resolve_checkpoint
    from mtkseg.train.loop import configure_threads, load_run_config, model_from_config, split_names
    from mtkseg.train.models import count_macs

    weights, config_path = resolve_checkpoint(args.checkpoint)
    cfg, _ = load_run_config(config_path)
    if args.split in split_names(cfg.train_split):
        print(f"warning: the run trained on '{args.split}': the scores are optimistic", file=sys.stderr)
    class_weights = json.loads(Path(config_path).read_text()).get("class_weights")
    offsets = prior_correction_offsets(class_weights, args.alpha) if class_weights and args.alpha else 0.0
    configure_threads(args.threads)
    trained = model_from_config(cfg, int(cfg.num_classes))
    trained.load_weights(str(weights))
    ds = SegmentationDataset(cfg.data, args.split)
    images, masks = ds.load_all()

    for (size, drop), spec in zip(specs, args.specs):
        model = build_variant(cfg, size, drop, trained)
        x = np.stack([resize_image(im, size) for im in images]).astype(np.float32) / 255.0
        logits = model.predict(x, batch_size=4, verbose=0) + offsets
        scores = {}
        for mode in ("nearest", "bilinear"):
            cm = ConfusionMatrix(int(cfg.num_classes), ds.classes.ignore_index, ds.classes.names)
            for lg, gt in zip(logits, masks):
                native = (gt.shape[1], gt.shape[0])
                if mode == "nearest":
                    pred = cv2.resize(np.argmax(lg, axis=-1).astype(np.uint8), native, interpolation=cv2.INTER_NEAREST)
                else:
                    pred = np.argmax(cv2.resize(lg.astype(np.float32), native, interpolation=cv2.INTER_LINEAR), axis=-1)
                cm.update(gt, pred.astype(np.uint8))
            scores[mode] = 100 * cm.results().miou
        print(f"{spec:24} {count_macs(model, size) / 1e9:.3f} GMACs  mIoU nearest {scores['nearest']:.2f}  "
              f"bilinear {scores['bilinear']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
