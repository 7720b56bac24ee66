#!/usr/bin/env bash
# Issue 22, sixth round: the shipped 2-class recipe (lite_cuhk.sh: Lite0, stem and first 11
# blocks frozen, 2,000 iterations) with the other decoders the issue names: a feature pyramid
# merged at stride 4 (`--decoder-kind fpn`) and a refinement stage at the input's resolution
# (`--refine full`), each scored on the 156 validation images beside `bundled`.
# `bash experiments/lite_decoders.sh fpn` or `... refine` runs one variant (two can run side
# by side, e.g. with OMP_NUM_THREADS=1 each); an interrupted run continues (fit_run).
source "$(dirname "$0")/steps.sh"

LITE="--arch liteunet --encoder lite0 --pretrained imagenet --freeze-blocks 11 --batch-size 8 \
    --crop 224 --augment --optimizer adamw --lr 1e-3 --weight-decay 1e-4 --lr-schedule cosine \
    --val-rows 240 --select-by miou --workers 0 -q"

variant() {  # variant NAME FIT-OPTIONS...
    local name=$1
    shift
    fit_run "runs/lite-$name-cuhk" data/cuhk-tiles $LITE "$@" --iterations 2000 --eval-every 250
    step "evals/val-lite-$name-cuhk/results.json" $BIN/blursynth_train evaluate \
        --dataset data/cuhk-tiles --split val --model "lite-$name=runs/lite-$name-cuhk/best.pt" \
        --postprocess guided --out "evals/val-lite-$name-cuhk" -q
}

case "${1:-all}" in
    fpn) variant fpn --decoder-kind fpn ;;
    refine) variant refine --refine full ;;
    all) variant fpn --decoder-kind fpn && variant refine --refine full ;;
    *) echo "usage: $0 [fpn|refine|all]" >&2; exit 2 ;;
esac
