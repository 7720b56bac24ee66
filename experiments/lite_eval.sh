#!/usr/bin/env bash
# Issue 22, first round, scoring (after experiments/lite_cuhk.sh): the liteunet runs against
# the U-Nets they replace, on the 156 CUHK validation images (raw and guided-filtered maps),
# then the chosen models once on the 20 held-out images and on the 5 DUT images (an
# independent defocus set, white = sharp), and the shipped files exported from best.pt.
source "$(dirname "$0")/steps.sh"

step evals/val-lite-cuhk/results.json $BIN/blursynth_train evaluate --dataset data/cuhk-tiles \
    --split val --model lite=runs/lite-cuhk/best.pt --model unet --postprocess guided \
    --out evals/val-lite-cuhk -q
step evals/val-lite3-cuhk/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles3 --split val --model lite3=runs/lite3-cuhk/best.pt \
    --model unet-types --postprocess guided --out evals/val-lite3-cuhk -q
step evals/eval-lite-cuhk/results.json $BIN/blursynth_train evaluate --dataset data/cuhk-tiles \
    --split eval --model lite=runs/lite-cuhk/best.pt --model unet --model report --stride 4 \
    --baseline su --postprocess guided --out evals/eval-lite-cuhk -q
step evals/eval-lite3-cuhk/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles3 --split eval --model lite3=runs/lite3-cuhk/best.pt \
    --model unet-types --postprocess guided --out evals/eval-lite3-cuhk -q
step evals/dut-lite/results.json $BIN/blursynth_train evaluate --source folder \
    --root "$SHARED/dut-sample" --polarity sharp-white --mask-threshold 128 \
    --model lite=runs/lite-cuhk/best.pt --model lite3=runs/lite3-cuhk/best.pt --model unet \
    --postprocess guided --out evals/dut-lite -q
# ship: best.pt of each run, float16, with the names of its training images
step blursynth_train/weights/liteunet-cuhk.pt $BIN/blursynth_train export runs/lite-cuhk/best.pt \
    --out blursynth_train/weights/liteunet-cuhk.pt --dataset data/cuhk-tiles
step blursynth_train/weights/liteunet3-cuhk.pt $BIN/blursynth_train export \
    runs/lite3-cuhk/best.pt --out blursynth_train/weights/liteunet3-cuhk.pt --dataset data/cuhk-tiles3
