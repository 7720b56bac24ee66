#!/usr/bin/env bash
# Issue 22, second round (after experiments/lite_cuhk.sh): the first round's 2-class model
# ended with its training loss at its validation loss (0.265 / 0.272), a model short of
# capacity rather than data. Here the same recipe trains more of the encoder: stem and first
# 5 of Lite0's 16 blocks frozen (blocks 5-15, the stride-16 and stride-32 stages, train),
# scored on the 156 validation images beside the shipped `bundled` model.
source "$(dirname "$0")/steps.sh"

step runs/lite-f5-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles \
    --out runs/lite-f5-cuhk $LITE --freeze-blocks 5 --iterations 2000 --eval-every 250
step evals/val-lite-f5-cuhk/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles --split val --model lite-f5=runs/lite-f5-cuhk/best.pt \
    --model bundled --out evals/val-lite-f5-cuhk -q
