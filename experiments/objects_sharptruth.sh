#!/usr/bin/env bash
# Issue 11's proof, sixth round (experiments/LOG.md, "Sharp backgrounds where the truth calls
# them sharp"): the every-model renderings of the third round (experiments/objects_pan.sh: 500
# each of motion, pan, defocus and mixed, every camera option but JPEG, a fifth uniform),
# once with any photograph as background and once with `--min-background-sharpness 0.2
# --sharp-background-for sharp-truth` (only the motion images and the sharp uniform ones
# take their background from the 534 photographs whose background is sharp; mixed images
# kept), each trained on synthetic data alone with three training seeds, chosen on the
# CUHK validation tiles and scored on the 156 CUHK validation images.
# Writes synth/, data/, runs/, evals/ (git-ignored); steps already done are skipped.
source "$(dirname "$0")/steps.sh"

BEST=(--motion-kernel shake --defocus-kernel disk --linear-light --noise --uniform-share 0.2)
RECIPE="--arch unet --batch-size 8 --crop 128 --augment --optimizer adamw --weight-decay 1e-4 \
    --lr-schedule cosine --workers 0 --lr 2e-3 -q"
REALVAL="--iterations 3000 --eval-every 500 --val-rows 0 --val-dataset data/cuhk-tiles"

step data/cuhk-tiles/SHA256SUMS $BIN/blursynth tiles --source shi --root "$SHARED/cuhk" \
    --out data/cuhk-tiles --no-jitter --jobs 2 -q
# synth NAME OPTIONS...: 2,000 every-model renderings of ECSSD/DUTS into synth/NAME, tiled
synth() {
    local name=$1
    shift
    step "synth/$name/records.jsonl" $BIN/blursynth generate --objects "$SHARED/ecssd" \
        --objects "$SHARED/duts-subset" --out "synth/$name" --seed 0 -j 2 -q \
        --model all --n 500 "${BEST[@]}" "$@"
    step "data/$name-tiles/SHA256SUMS" $BIN/blursynth tiles --source synth \
        --root "synth/$name" --out "data/$name-tiles" --eval-images 0 --jobs 2 -q
}
synth objects-every
synth objects-sharptruth --min-background-sharpness 0.2 --sharp-background-for sharp-truth

for seed in 0 1 2; do
    for name in objects-sharptruth objects-every; do
        run=v-$name-realval3000-seed$seed
        step "runs/$run/summary.json" $BIN/blursynth_train fit "data/$name-tiles" \
            --out "runs/$run" $RECIPE $REALVAL --seed "$seed"
        step "evals/val-$run/results.json" $BIN/blursynth_train evaluate \
            --dataset data/cuhk-tiles --split val --model "$run=runs/$run/best.pt" \
            --out "evals/val-$run" -q
    done
done
