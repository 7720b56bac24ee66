#!/usr/bin/env bash
# Synthetic pre-training for the shipped dense model (experiments/LOG.md, "Synthetic
# pre-training at the shipped length"): the shipped recipe (experiments/dense_experiments.sh,
# 7,000 iterations on CUHK tiles) started from the synthetic-only model of
# experiments/objects_experiments.sh (every camera option, 1,500 iterations) instead of from
# scratch; scored on the 156 CUHK validation images beside the shipped model.
# Then the same for the 3-class model. Run experiments/objects_experiments.sh and
# experiments/objects_ablation.sh first. Writes runs/, evals/ (git-ignored); steps already done
# are skipped.
source "$(dirname "$0")/steps.sh"

RECIPE="--arch unet --batch-size 8 --crop 128 --augment --optimizer adamw --weight-decay 1e-4 \
    --lr-schedule cosine --val-rows 240 --workers 0 -q"
step runs/unet-objects-then-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles \
    --out runs/unet-objects-then-cuhk --init runs/v-objects-only/best.pt \
    $RECIPE --lr 2e-3 --iterations 7000 --eval-every 700
step evals/val-unet-objects-then-cuhk/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles --split val --postprocess guided \
    --model unet-objects-then-cuhk=runs/unet-objects-then-cuhk/best.pt \
    --model bundled --out evals/val-unet-objects-then-cuhk -q

# 3-class: the shipped types recipe (3,000 iterations on CUHK 3-class tiles) started from
# the synthetic 3-class model of experiments/objects_ablation.sh (motion, defocus and mixed
# renderings), scored beside the shipped types model
step runs/unet3-objects-then-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles3 \
    --out runs/unet3-objects-then-cuhk --init runs/v3-objects-all-only/best.pt \
    $RECIPE --lr 2e-3 --iterations 3000 --eval-every 1000
step evals/val-unet3-objects-then-cuhk/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles3 --split val \
    --model unet3-objects-then-cuhk=runs/unet3-objects-then-cuhk/best.pt --model types \
    --out evals/val-unet3-objects-then-cuhk -q
