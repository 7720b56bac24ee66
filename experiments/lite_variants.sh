#!/usr/bin/env bash
# Issue 22, larger encoders (after experiments/lite_cuhk.sh and lite_eval.sh): the 2-class
# recipe with EfficientNet-Lite1 (third round) and Lite2 (fifth round) in place of Lite0,
# each with its stem and first 14 of 21 blocks frozen: the last 7 train, as the last 5 of
# Lite0's 16 do. Scored on the 156 validation images beside the Lite0 model. An interrupted
# run continues (fit_run).
source "$(dirname "$0")/steps.sh"

LITE="--arch liteunet --pretrained imagenet --batch-size 8 --crop 224 --augment \
    --optimizer adamw --lr 1e-3 --weight-decay 1e-4 --lr-schedule cosine --val-rows 240 \
    --select-by miou --workers 0 -q"

variant() {  # variant ENCODER: runs/ENCODER-cuhk, evals/val-ENCODER-cuhk
    fit_run "runs/$1-cuhk" data/cuhk-tiles $LITE --encoder "$1" --freeze-blocks 14 \
        --iterations 2000 --eval-every 250
    step "evals/val-$1-cuhk/results.json" $BIN/blursynth_train evaluate \
        --dataset data/cuhk-tiles --split val --model "$1=runs/$1-cuhk/best.pt" \
        --postprocess guided --out "evals/val-$1-cuhk" -q
}

variant lite1
variant lite2
