#!/usr/bin/env bash
# Issue 11's proof, third round (experiments/LOG.md, "Panning shots"): synthetic data with
# every blur model, pan included (a sharp subject over a background streaked by the motion
# kernel: the commonest motion photograph, which eq. (1) never makes), against the best
# motion + defocus data of experiments/objects_ablation.sh at the same size (2,000 renderings of
# ECSSD/DUTS, the same camera options). Synthetic-only dense U-Nets, 1,500 iterations,
# scored on the 156 CUHK validation images, 2-class and 3-class (and the 2-class model with
# a second training seed); then both synthetic models as the start of the shipped recipes:
# types (3,000 iterations on CUHK 3-class tiles: the types model shipped from 2026-12-02,
# exported with `blursynth_train export runs/unet3-every-then-cuhk/best.pt --out
# blursynth_train/weights/unet3-cuhk.pt --dataset data/cuhk-tiles3`) and bundled (7,000).
# Run experiments/objects_experiments.sh and experiments/objects_ablation.sh first (they make
# data/cuhk-tiles, data/cuhk-tiles3 and the models compared against). Writes synth/, data/,
# runs/, evals/ (git-ignored); steps already done are skipped.
source "$(dirname "$0")/steps.sh"

RECIPE="--arch unet --batch-size 8 --crop 128 --augment --optimizer adamw --weight-decay 1e-4 \
    --lr-schedule cosine --val-rows 240 --workers 0 --lr 2e-3 -q"
SHORT="--iterations 1500 --eval-every 1500"
# the options of the best 2-class synthetic data so far (objects-best): every camera option
# but JPEG, a fifth of the images sharp or blurred everywhere
BEST=(--motion-kernel shake --defocus-kernel disk --linear-light --noise --uniform-share 0.2)

VARIANT_RECIPE="$RECIPE $SHORT"

# every model, 500 images each: motion, defocus, mixed, pan; 2-class, then 3-class
variant objects-every --model all --n 500 "${BEST[@]}"
step data/objects-every-tiles3/SHA256SUMS $BIN/blursynth tiles --source synth --classes 3 \
    --root synth/objects-every --out data/objects-every-tiles3 --eval-images 0 --jobs 2 -q
step runs/v3-objects-every-only/summary.json $BIN/blursynth_train fit \
    data/objects-every-tiles3 --out runs/v3-objects-every-only $RECIPE $SHORT
step evals/val-v3-objects-every-only/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles3 --split val \
    --model v3-objects-every-only=runs/v3-objects-every-only/best.pt \
    --out evals/val-v3-objects-every-only -q

# the spread of training alone: the 2-class model again with another training seed
variant_seed objects-every 1

# the shipped recipes started from these synthetic models (experiments/objects_pretrain.sh did the
# same from the motion + defocus (+ mixed) models): types (3,000 iterations on CUHK 3-class
# tiles) and bundled (7,000 on CUHK tiles), scored beside the shipped models
step runs/unet3-every-then-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles3 \
    --out runs/unet3-every-then-cuhk --init runs/v3-objects-every-only/best.pt \
    $RECIPE --iterations 3000 --eval-every 1000
step evals/val-unet3-every-then-cuhk/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles3 --split val \
    --model unet3-every-then-cuhk=runs/unet3-every-then-cuhk/best.pt --model types \
    --out evals/val-unet3-every-then-cuhk -q
step runs/unet-every-then-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles \
    --out runs/unet-every-then-cuhk --init runs/v-objects-every-only/best.pt \
    $RECIPE --iterations 7000 --eval-every 700
step evals/val-unet-every-then-cuhk/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles --split val --postprocess guided \
    --model unet-every-then-cuhk=runs/unet-every-then-cuhk/best.pt --model bundled \
    --out evals/val-unet-every-then-cuhk -q

# how long to train on renderings: the motion + defocus data of experiments/objects_ablation.sh
# (objects-best) for 6,000 iterations instead of 1,500
step runs/v-objects-best-only-6000/summary.json $BIN/blursynth_train fit \
    data/objects-best-tiles --out runs/v-objects-best-only-6000 $RECIPE --iterations 6000 \
    --eval-every 1500
step evals/val-v-objects-best-only-6000/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles --split val \
    --model v-objects-best-only-6000=runs/v-objects-best-only-6000/best.pt \
    --out evals/val-v-objects-best-only-6000 -q

# stronger blur: the every-model data with wider ranges of blur extent (motion 5-40 px
# instead of 5-15, disk radius 2-8 px instead of 2-4; CUHK photographs are ~640 px wide,
# ECSSD/DUTS ones <= 400)
variant objects-strong --model all --n 500 "${BEST[@]}" --motion-length 5 40 --disk-radius 2 8

# only the defocus wider (disk radius 2-8 px; motion 5-15 px as before)
variant objects-disk8 --model all --n 500 "${BEST[@]}" --disk-radius 2 8

# the wider-blur model again with another training seed
variant_seed objects-strong 1

# the checkpoint chosen on real images: synthetic-only training (every model) for 4,500
# iterations, validated every 500 on the CUHK validation tiles (fit --val-dataset) instead
# of on the renderings' own val split
step runs/v-objects-every-realval/summary.json $BIN/blursynth_train fit \
    data/objects-every-tiles --out runs/v-objects-every-realval $RECIPE --iterations 4500 \
    --eval-every 500 --val-rows 0 --val-dataset data/cuhk-tiles
step evals/val-v-objects-every-realval/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles --split val \
    --model v-objects-every-realval=runs/v-objects-every-realval/best.pt \
    --out evals/val-v-objects-every-realval -q
# both synthetic-only every-model checkpoints on the 20 held-out images, beside the shipped
step evals/heldout-realval/results.json $BIN/blursynth_train evaluate --dataset data/cuhk-tiles \
    --split eval --model v-objects-every-realval=runs/v-objects-every-realval/best.pt \
    --model v-objects-every-only=runs/v-objects-every-only/best.pt --model bundled \
    --out evals/heldout-realval -q
