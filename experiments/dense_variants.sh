#!/usr/bin/env bash
# Issue 10's variants, third round (experiments/LOG.md, "Variants"): training options of the
# dense U-Net, each changed alone, scored on the 156 CUHK validation images.
# - 2-class, the CUHK tiles alone for 1,500 iterations (experiments/dense_experiments.sh's v-base):
#   with photometric jitter (fit --photometric); with the soft Dice loss added
#   (--loss ce+dice); with the weights averaged (--ema 0.999); and unchanged under another
#   training seed (the spread of training alone, to read the differences against).
# - 3-class, the shipped `types` recipe (synthetic pre-training of experiments/objects_pan.sh, then
#   3,000 iterations on the CUHK 3-class tiles): with motion weighted twice
#   (--class-weights 1,2,1), and with the Dice loss, beside the shipped model.
# Run experiments/dense_experiments.sh and experiments/objects_pan.sh first (data/cuhk-tiles,
# data/cuhk-tiles3, runs/v3-objects-every-only). Writes runs/ and evals/ (git-ignored); steps
# already done are skipped.
source "$(dirname "$0")/steps.sh"

RECIPE="--arch unet --batch-size 8 --crop 128 --augment --optimizer adamw --weight-decay 1e-4 \
    --lr-schedule cosine --val-rows 240 --workers 0 -q --lr 2e-3"

# dense NAME DATASET EVAL-DATASET FIT-ARGS...: train runs/NAME, score it on the validation
# images (evals/val-NAME)
dense() {
    local name=$1 data=$2 evaldata=$3
    shift 3
    step "runs/$name/summary.json" $BIN/blursynth_train fit "$data" --out "runs/$name" \
        $RECIPE "$@"
    step "evals/val-$name/results.json" $BIN/blursynth_train evaluate \
        --dataset "$evaldata" --split val --model "$name=runs/$name/best.pt" \
        --out "evals/val-$name" -q
}

SHORT="--iterations 1500 --eval-every 1500"
dense v-base-photo data/cuhk-tiles data/cuhk-tiles $SHORT --photometric
dense v-base-dice data/cuhk-tiles data/cuhk-tiles $SHORT --loss ce+dice
dense v-base-seed1 data/cuhk-tiles data/cuhk-tiles $SHORT --seed 1
dense v-base-ema data/cuhk-tiles data/cuhk-tiles $SHORT --ema 0.999

TYPES="--init runs/v3-objects-every-only/best.pt --iterations 3000 --eval-every 1000"
dense unet3-every-then-cuhk-w121 data/cuhk-tiles3 data/cuhk-tiles3 $TYPES --class-weights 1,2,1
dense unet3-every-then-cuhk-dice data/cuhk-tiles3 data/cuhk-tiles3 $TYPES --loss ce+dice
