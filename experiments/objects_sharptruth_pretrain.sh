#!/usr/bin/env bash
# Issue 11's proof, sixth round (experiments/LOG.md, "Sharp backgrounds where the truth calls
# them sharp", pre-training): the seed-0 synthetic-only models of experiments/objects_sharptruth.sh
# (every photograph as background, or sharp ones where the truth calls them sharp) as the
# start of 1,500 iterations on the CUHK tiles (the first round's protocol), against CUHK
# alone for 1,500 and for 3,000; scored on the 156 CUHK validation images. Then the seed-0
# synthetic-only models of both arms on the 20 held-out CUHK images.
# Run experiments/objects_sharptruth.sh first. Writes runs/, evals/ (git-ignored).
source "$(dirname "$0")/steps.sh"

RECIPE="--arch unet --batch-size 8 --crop 128 --augment --optimizer adamw --weight-decay 1e-4 \
    --lr-schedule cosine --val-rows 240 --workers 0 --lr 2e-3 --iterations 1500 \
    --eval-every 1500 -q"
# cuhk_from NAME [INIT]: 1,500 iterations on the CUHK tiles (from INIT's weights), scored
cuhk_from() {
    local run=$1
    shift
    step "runs/$run/summary.json" $BIN/blursynth_train fit data/cuhk-tiles --out "runs/$run" \
        $RECIPE "$@"
    step "evals/val-$run/results.json" $BIN/blursynth_train evaluate --dataset data/cuhk-tiles \
        --split val --model "$run=runs/$run/best.pt" --out "evals/val-$run" -q
}
cuhk_from v-base
for name in objects-every objects-sharptruth; do
    cuhk_from "v-$name-then-cuhk" --init "runs/v-$name-realval3000-seed0/best.pt"
done

step evals/heldout-sharptruth/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles --split eval \
    --model v-objects-every-realval3000-seed0=runs/v-objects-every-realval3000-seed0/best.pt \
    --model v-objects-sharptruth-realval3000-seed0=runs/v-objects-sharptruth-realval3000-seed0/best.pt \
    --out evals/heldout-sharptruth -q

# CUHK alone for 3,000 iterations (the first round's reference "at equal length")
R3000="${RECIPE/--iterations 1500/--iterations 3000}"
step runs/v-base-3000/summary.json $BIN/blursynth_train fit data/cuhk-tiles \
    --out runs/v-base-3000 ${R3000/--eval-every 1500/--eval-every 3000}
step evals/val-v-base-3000/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles --split val --model v-base-3000=runs/v-base-3000/best.pt \
    --out evals/val-v-base-3000 -q
