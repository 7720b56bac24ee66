#!/usr/bin/env bash
# Issue 11's proof, fifth round (experiments/LOG.md, "An object over its own background"): the
# every-model renderings of the third round (experiments/objects_pan.sh: 500 each of motion, pan,
# defocus and mixed, every camera option but JPEG, a fifth uniform), rendered again with each
# object in its own photograph (generate --background own) instead of pasted over another;
# a dense U-Net trained on them alone, its checkpoint chosen on the CUHK validation tiles as
# in experiments/objects_realval.sh (here 3,000 iterations: that run's best was at 2,500), and
# scored on the 156 CUHK validation images. Writes synth/, data/, runs/, evals/ (ignored).
source "$(dirname "$0")/steps.sh"

BEST=(--motion-kernel shake --defocus-kernel disk --linear-light --noise --uniform-share 0.2)
RECIPE="--arch unet --batch-size 8 --crop 128 --augment --optimizer adamw --weight-decay 1e-4 \
    --lr-schedule cosine --workers 0 --lr 2e-3 -q"
REALVAL="--iterations 3000 --eval-every 500 --val-rows 0 --val-dataset data/cuhk-tiles"

step synth/objects-own/records.jsonl $BIN/blursynth generate --objects "$SHARED/ecssd" \
    --objects "$SHARED/duts-subset" --out synth/objects-own --seed 0 -j 2 -q \
    --model all --n 500 "${BEST[@]}" --background own
step data/objects-own-tiles/SHA256SUMS $BIN/blursynth tiles --source synth \
    --root synth/objects-own --out data/objects-own-tiles --eval-images 0 --jobs 2 -q
step runs/v-objects-own-realval/summary.json $BIN/blursynth_train fit data/objects-own-tiles \
    --out runs/v-objects-own-realval $RECIPE $REALVAL
step evals/val-v-objects-own-realval/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles --split val --model "v-objects-own-realval=runs/v-objects-own-realval/best.pt" \
    --out evals/val-v-objects-own-realval -q
