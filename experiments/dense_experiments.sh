#!/usr/bin/env bash
# The dense-segmenter experiments of experiments/LOG.md ("Dense segmenter"), in order, on CPU.
# Needs the shared data (BLURSYNTH_SHARED_DATA or ../shared/data) and the venv of README.md.
# Writes data/, runs/, evals/ (all git-ignored). Steps already done are skipped.
source "$(dirname "$0")/steps.sh"

# datasets: 256-px tiles of CUHK (2 and 3 classes; the same held-out 20 and validation 156
# images as the patch datasets of seed 0), of the VOC-sample renderings and of the DUT sample
step data/cuhk-tiles/SHA256SUMS $BIN/blursynth tiles --source shi --root "$SHARED/cuhk" \
    --out data/cuhk-tiles --no-jitter --jobs 2 -q
step data/cuhk-tiles3/SHA256SUMS $BIN/blursynth tiles --source shi --root "$SHARED/cuhk" \
    --out data/cuhk-tiles3 --classes 3 --no-jitter --jobs 2 -q
step synth/voc/records.jsonl $BIN/blursynth generate --voc "$SHARED/voc-sample" --n 300 \
    --out synth/voc --seed 0 -q
step data/synth-tiles/SHA256SUMS $BIN/blursynth tiles --source synth --root synth/voc \
    --out data/synth-tiles --eval-images 0 -q
step data/dut-tiles/SHA256SUMS $BIN/blursynth tiles --source folder --root "$SHARED/dut-sample" \
    --polarity sharp-white --threshold 128 --blur-type defocus --out data/dut-tiles \
    --eval-images 0 -q

# the recipe: AdamW, cosine decay, batch 8 of random 128-px crops, flips/rotations
RECIPE="--arch unet --batch-size 8 --crop 128 --augment --optimizer adamw --weight-decay 1e-4 \
    --lr-schedule cosine --val-rows 240 --workers 0 -q"
# the shipped 2-class model (7,000 iterations) and the 3-class one (3,000)
step runs/unet-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles --out runs/unet-cuhk \
    $RECIPE --lr 2e-3 --iterations 7000 --eval-every 700
step runs/unet3-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles3 \
    --out runs/unet3-cuhk $RECIPE --lr 2e-3 --iterations 3000 --eval-every 1000
# variants, 1,500 iterations each, chosen on the 156 validation images
SHORT="--iterations 1500 --eval-every 1500"
step runs/v-base/summary.json $BIN/blursynth_train fit data/cuhk-tiles --out runs/v-base \
    $RECIPE --lr 2e-3 $SHORT
step runs/v-synth/summary.json $BIN/blursynth_train fit data/cuhk-tiles data/synth-tiles \
    --out runs/v-synth $RECIPE --lr 2e-3 $SHORT
step runs/v-dut/summary.json $BIN/blursynth_train fit data/cuhk-tiles data/dut-tiles \
    --out runs/v-dut $RECIPE --lr 2e-3 $SHORT

# scoring: every model on the validation images; the chosen ones on the held-out 20
for run in unet-cuhk unet3-cuhk v-base v-synth v-dut; do
    step "evals/val-$run/results.json" $BIN/blursynth_train evaluate --dataset data/cuhk-tiles \
        --split val --model "$run=runs/$run/best.pt" --postprocess guided \
        --out "evals/val-$run" -q
done
step evals/heldout/results.json $BIN/blursynth_train evaluate --dataset data/cuhk-tiles \
    --model unet=runs/unet-cuhk/best.pt --model unet3=runs/unet3-cuhk/best.pt \
    --model report --baseline su --baseline lbp --stride 4 --postprocess guided \
    --out evals/heldout -q
