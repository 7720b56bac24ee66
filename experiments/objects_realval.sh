#!/usr/bin/env bash
# Issue 11's proof, fourth round (experiments/LOG.md, "Training options and the checkpoint
# choice"):
# synthetic-only dense U-Nets validated on the CUHK validation tiles (fit --val-dataset), the
# checkpoint choice that gave the best synthetic-only model of the third round
# (experiments/objects_pan.sh). Here: the renderings of all three blur-extent variants of that round
# together (every model; motion 5-15 / 5-40 px; disk 2-4 / 2-8 px: 6,000 renderings), with
# and without an average of the weights (fit --ema), and the every-model data alone with
# photometric jitter (fit --photometric); then the shipped 2-class recipe started from the
# third round's checkpoint chosen on real tiles. Run experiments/objects_pan.sh first (it makes the
# data). Writes runs/ and evals/ (git-ignored); steps already done are skipped.
source "$(dirname "$0")/steps.sh"

RECIPE="--arch unet --batch-size 8 --crop 128 --augment --optimizer adamw --weight-decay 1e-4 \
    --lr-schedule cosine --workers 0 --lr 2e-3 -q"
# 4,500 iterations, validated every 500 on the real validation tiles
REALVAL="--iterations 4500 --eval-every 500 --val-rows 0 --val-dataset data/cuhk-tiles"

# realval NAME FIT-ARGS...: train runs/NAME with $RECIPE $REALVAL and score its best.pt on
# the 156 CUHK validation images (evals/val-NAME)
realval() {
    local name=$1
    shift
    step "runs/$name/summary.json" $BIN/blursynth_train fit "$@" --out "runs/$name" \
        $RECIPE $REALVAL
    step "evals/val-$name/results.json" $BIN/blursynth_train evaluate \
        --dataset data/cuhk-tiles --split val --model "$name=runs/$name/best.pt" \
        --out "evals/val-$name" -q
}

# the three blur-extent variants together
realval v-objects-extents-realval data/objects-every-tiles data/objects-strong-tiles \
    data/objects-disk8-tiles

# the every-model data alone (the third round's 0.623: runs/v-objects-every-realval), now with
# photometric jitter
realval v-objects-every-photo-realval data/objects-every-tiles --photometric

# the three blur-extent variants together again, validated and chosen with the weights
# averaged (fit --ema 0.999)
realval v-objects-extents-ema-realval data/objects-every-tiles data/objects-strong-tiles \
    data/objects-disk8-tiles --ema 0.999

# the shipped 2-class recipe (7,000 iterations on the CUHK tiles, experiments/objects_pan.sh)
# started from the every-model synthetic checkpoint chosen on real tiles (third round),
# beside the bundled model
step runs/unet-realval-then-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles \
    --out runs/unet-realval-then-cuhk --init runs/v-objects-every-realval/best.pt \
    $RECIPE --val-rows 240 --iterations 7000 --eval-every 700
step evals/val-unet-realval-then-cuhk/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles --split val --postprocess guided \
    --model unet-realval-then-cuhk=runs/unet-realval-then-cuhk/best.pt --model bundled \
    --out evals/val-unet-realval-then-cuhk -q
