#!/usr/bin/env bash
# Issue 22, first round, variants (after experiments/lite_cuhk.sh and lite_eval.sh): the
# 2-class recipe with the EfficientNet-Lite1 encoder (its stem and first 14 of 21 blocks
# frozen: the last 7 train, as the last 5 of Lite0's 16 do; about the same CPU time per
# step), scored on the 156 validation images beside the Lite0 model. Fifth round: the same
# with EfficientNet-Lite2 (21 blocks as Lite1, wider; the same 14 frozen).
source "$(dirname "$0")/steps.sh"

LITE="--arch liteunet --pretrained imagenet --batch-size 8 --crop 224 --augment \
    --optimizer adamw --lr 1e-3 --weight-decay 1e-4 --lr-schedule cosine --val-rows 240 \
    --select-by miou --workers 0 -q"
step runs/lite1-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles \
    --out runs/lite1-cuhk $LITE --encoder lite1 --freeze-blocks 14 --iterations 2000 \
    --eval-every 250
step evals/val-lite1-cuhk/results.json $BIN/blursynth_train evaluate --dataset data/cuhk-tiles \
    --split val --model lite1=runs/lite1-cuhk/best.pt --postprocess guided \
    --out evals/val-lite1-cuhk -q
step runs/lite2-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles \
    --out runs/lite2-cuhk $LITE --encoder lite2 --freeze-blocks 14 --iterations 2000 \
    --eval-every 250
step evals/val-lite2-cuhk/results.json $BIN/blursynth_train evaluate --dataset data/cuhk-tiles \
    --split val --model lite2=runs/lite2-cuhk/best.pt --postprocess guided \
    --out evals/val-lite2-cuhk -q
