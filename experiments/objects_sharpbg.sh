#!/usr/bin/env bash
# Issue 11's proof, fifth round (experiments/LOG.md, "Sharp backgrounds only"): the every-model
# renderings of the third round (experiments/objects_pan.sh: 500 each of motion, pan, defocus and
# mixed, every camera option but JPEG, a fifth uniform), with only the photographs whose
# background is sharp (generate --min-background-sharpness 0.2: 534 of the 2,445) as
# backgrounds; a dense U-Net trained on them alone, chosen on the CUHK validation tiles and
# scored on the 156 CUHK validation images, as experiments/objects_own.sh does.
# Writes synth/, data/, runs/, evals/ (git-ignored); steps already done are skipped.
source "$(dirname "$0")/steps.sh"

BEST=(--motion-kernel shake --defocus-kernel disk --linear-light --noise --uniform-share 0.2)
RECIPE="--arch unet --batch-size 8 --crop 128 --augment --optimizer adamw --weight-decay 1e-4 \
    --lr-schedule cosine --workers 0 --lr 2e-3 -q"
REALVAL="--iterations 3000 --eval-every 500 --val-rows 0 --val-dataset data/cuhk-tiles"

step synth/objects-sharpbg/records.jsonl $BIN/blursynth generate --objects "$SHARED/ecssd" \
    --objects "$SHARED/duts-subset" --out synth/objects-sharpbg --seed 0 -j 2 -q \
    --model all --n 500 "${BEST[@]}" --min-background-sharpness 0.2
step data/objects-sharpbg-tiles/SHA256SUMS $BIN/blursynth tiles --source synth \
    --root synth/objects-sharpbg --out data/objects-sharpbg-tiles --eval-images 0 --jobs 2 -q
step runs/v-objects-sharpbg-realval/summary.json $BIN/blursynth_train fit \
    data/objects-sharpbg-tiles --out runs/v-objects-sharpbg-realval $RECIPE $REALVAL
step evals/val-v-objects-sharpbg-realval/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles --split val \
    --model "v-objects-sharpbg-realval=runs/v-objects-sharpbg-realval/best.pt" \
    --out evals/val-v-objects-sharpbg-realval -q
