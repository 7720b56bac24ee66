#!/usr/bin/env bash
# Issue 11's proof, first round (experiments/LOG.md, "Synthetic data from object-mask photo sets"):
# the dense U-Net trained on CUHK alone, on CUHK + synthetic renderings of ECSSD/DUTS objects
# (every camera option on), and on those renderings alone; then, on the same objects, the
# report's two models without any camera option, alone (is the realism worth it?). All scored
# on the 156 CUHK validation images; 1,500 iterations each, the variant length of
# experiments/dense_experiments.sh.
# Needs the shared data and the venv of README.md; writes synth/, data/, runs/, evals/
# (git-ignored). Steps already done are skipped.
source "$(dirname "$0")/steps.sh"

step synth/objects/records.jsonl $BIN/blursynth generate --objects "$SHARED/ecssd" \
    --objects "$SHARED/duts-subset" --n 1000 --out synth/objects --seed 0 \
    --motion-kernel shake --defocus-kernel disk --linear-light --noise --jpeg 90 -j 2 -q
step data/objects-tiles/SHA256SUMS $BIN/blursynth tiles --source synth --root synth/objects \
    --out data/objects-tiles --eval-images 0 --jobs 2 -q
step data/cuhk-tiles/SHA256SUMS $BIN/blursynth tiles --source shi --root "$SHARED/cuhk" \
    --out data/cuhk-tiles --no-jitter --jobs 2 -q

RECIPE="--arch unet --batch-size 8 --crop 128 --augment --optimizer adamw --weight-decay 1e-4 \
    --lr-schedule cosine --val-rows 240 --workers 0 --lr 2e-3 --iterations 1500 \
    --eval-every 1500 -q"
step runs/v-base/summary.json $BIN/blursynth_train fit data/cuhk-tiles --out runs/v-base $RECIPE
step runs/v-objects/summary.json $BIN/blursynth_train fit data/cuhk-tiles data/objects-tiles \
    --out runs/v-objects $RECIPE
step runs/v-objects-only/summary.json $BIN/blursynth_train fit data/objects-tiles \
    --out runs/v-objects-only $RECIPE

step synth/objects-plain/records.jsonl $BIN/blursynth generate --objects "$SHARED/ecssd" \
    --objects "$SHARED/duts-subset" --n 1000 --out synth/objects-plain --seed 0 -j 2 -q
step data/objects-plain-tiles/SHA256SUMS $BIN/blursynth tiles --source synth \
    --root synth/objects-plain --out data/objects-plain-tiles --eval-images 0 --jobs 2 -q
step runs/v-objects-plain-only/summary.json $BIN/blursynth_train fit data/objects-plain-tiles \
    --out runs/v-objects-plain-only $RECIPE

# synthetic data as pre-training: the synthetic-only model fine-tuned on CUHK (1,500 + 1,500
# iterations), against CUHK alone for the same 3,000
step runs/v-objects-then-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles \
    --out runs/v-objects-then-cuhk --init runs/v-objects-only/best.pt $RECIPE
R3000="${RECIPE/--iterations 1500/--iterations 3000}"
R3000="${R3000/--eval-every 1500/--eval-every 3000}"
step runs/v-base-3000/summary.json $BIN/blursynth_train fit data/cuhk-tiles \
    --out runs/v-base-3000 $R3000

for run in v-base v-objects v-objects-only v-objects-plain-only v-objects-then-cuhk v-base-3000; do
    step "evals/val-$run/results.json" $BIN/blursynth_train evaluate --dataset data/cuhk-tiles \
        --split val --model "$run=runs/$run/best.pt" --out "evals/val-$run" -q
done
