#!/usr/bin/env bash
# Issue 11's proof, second round (experiments/LOG.md, "Each realism option on and off"): the
# synthetic-only dense U-Net of experiments/objects_experiments.sh (every camera option on, 2,000
# ECSSD/DUTS renderings, 1,500 iterations, scored on the 156 CUHK validation images), with
# one option switched off at a time; then with whole-frame blur (--uniform-share), and a
# 3-class model from --model all (mixed images with sharp/motion/defocus truth).
# Run experiments/objects_experiments.sh first (it makes data/cuhk-tiles and the all-on model).
# Needs the shared data and the venv of README.md; writes synth/, data/, runs/, evals/
# (git-ignored). Steps already done are skipped.
source "$(dirname "$0")/steps.sh"

RECIPE="--arch unet --batch-size 8 --crop 128 --augment --optimizer adamw --weight-decay 1e-4 \
    --lr-schedule cosine --val-rows 240 --workers 0 --lr 2e-3 --iterations 1500 \
    --eval-every 1500 -q"
ALL=(--motion-kernel shake --defocus-kernel disk --linear-light --noise --jpeg 90)

VARIANT_RECIPE=$RECIPE

# each option off, the others on (the all-on model is v-objects-only)
variant objects-no-shake --n 1000 --defocus-kernel disk --linear-light --noise --jpeg 90
variant objects-no-disk --n 1000 --motion-kernel shake --linear-light --noise --jpeg 90
variant objects-no-linear --n 1000 --motion-kernel shake --defocus-kernel disk --noise --jpeg 90
variant objects-no-noise --n 1000 --motion-kernel shake --defocus-kernel disk --linear-light \
    --jpeg 90
variant objects-no-jpeg --n 1000 --motion-kernel shake --defocus-kernel disk --linear-light \
    --noise
# every option, and a fifth of the images sharp or blurred everywhere
variant objects-uniform --n 1000 "${ALL[@]}" --uniform-share 0.2

# 3-class: motion, defocus and mixed renderings (667 each), every option; scored against
# CUHK's 3-class tiles (the blur type of each image), beside a CUHK-only 3-class model
step synth/objects-all/records.jsonl $BIN/blursynth generate --objects "$SHARED/ecssd" \
    --objects "$SHARED/duts-subset" --model all --n 667 --out synth/objects-all --seed 0 \
    -j 2 -q "${ALL[@]}"
step data/objects-all-tiles3/SHA256SUMS $BIN/blursynth tiles --source synth --classes 3 \
    --root synth/objects-all --out data/objects-all-tiles3 --eval-images 0 --jobs 2 -q
step data/cuhk-tiles3/SHA256SUMS $BIN/blursynth tiles --source shi --classes 3 \
    --root "$SHARED/cuhk" --out data/cuhk-tiles3 --no-jitter --jobs 2 -q
step runs/v3-objects-all-only/summary.json $BIN/blursynth_train fit data/objects-all-tiles3 \
    --out runs/v3-objects-all-only $RECIPE
step runs/v3-base/summary.json $BIN/blursynth_train fit data/cuhk-tiles3 --out runs/v3-base \
    $RECIPE
for run in v3-objects-all-only v3-base; do
    step "evals/val-$run/results.json" $BIN/blursynth_train evaluate --dataset data/cuhk-tiles3 \
        --split val --model "$run=runs/$run/best.pt" --out "evals/val-$run" -q
done

# how much of a difference is noise: the all-on model again with another training seed
# (weights, batch order, augmentation)
variant_seed objects 1

# stronger sensor noise (noise is the option that matters most): shot a in [1e-3, 2e-2],
# read b in [1e-5, 3e-4], ten times the default ranges' floor
variant objects-noisier --n 1000 "${ALL[@]}" --noise-shot 1e-3 2e-2 --noise-read 1e-5 3e-4

# the options that helped on validation, together: every option but JPEG, and a fifth of
# the images sharp or blurred everywhere
variant objects-best --n 1000 --motion-kernel shake --defocus-kernel disk --linear-light \
    --noise --uniform-share 0.2
