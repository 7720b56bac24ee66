#!/usr/bin/env bash
# Issue 22, fifth round: the shipped 2-class recipe (lite_cuhk.sh: Lite0, stem and first 11
# blocks frozen, 2,000 iterations) with a pyramid pooling module before the decoder
# (`--context ppm`: means over 1, 2, 3 and 6 bins of the whole input), scored on the 156
# validation images beside `bundled`. An interrupted run continues (fit_run).
source "$(dirname "$0")/steps.sh"

LITE="--arch liteunet --encoder lite0 --pretrained imagenet --freeze-blocks 11 --batch-size 8 \
    --crop 224 --augment --optimizer adamw --lr 1e-3 --weight-decay 1e-4 --lr-schedule cosine \
    --val-rows 240 --select-by miou --workers 0 -q"
fit_run runs/lite-ppm-cuhk data/cuhk-tiles $LITE --context ppm --iterations 2000 \
    --eval-every 250
step evals/val-lite-ppm-cuhk/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles --split val --model lite-ppm=runs/lite-ppm-cuhk/best.pt \
    --postprocess guided --out evals/val-lite-ppm-cuhk -q
