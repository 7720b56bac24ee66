#!/usr/bin/env bash
# Issue 22, first round: the 3-class liteunet with and without synthetic pre-training. The
# synthetic stage is the one that taught the from-scratch U-Net its motion class
# (experiments/objects_pan.sh): 2,000 ECSSD/DUTS renderings, 500 each of motion, pan,
# defocus and mixed, every camera option but JPEG, a fifth uniform. The liteunet recipe
# of lite_cuhk.sh for 500 iterations on their 3-class tiles (validated on the CUHK
# validation tiles), then 1,500 on CUHK's 3-class tiles from there (fit --init): 2,000 in
# all, against runs/lite3-cuhk (CUHK alone, 2,000 iterations).
source "$(dirname "$0")/steps.sh"

step synth/objects-every/records.jsonl $BIN/blursynth generate --objects "$SHARED/ecssd" \
    --objects "$SHARED/duts-subset" --out synth/objects-every --seed 0 -j 2 -q --model all \
    --n 500 --motion-kernel shake --defocus-kernel disk --linear-light --noise --uniform-share 0.2
step data/objects-every-tiles3/SHA256SUMS $BIN/blursynth tiles --source synth --classes 3 \
    --root synth/objects-every --out data/objects-every-tiles3 --eval-images 0 --jobs 2 -q
step runs/lite3-synth/summary.json $BIN/blursynth_train fit data/objects-every-tiles3 \
    --val-dataset data/cuhk-tiles3 --out runs/lite3-synth $LITE --iterations 500 --eval-every 250
step runs/lite3-synth-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles3 \
    --out runs/lite3-synth-cuhk $LITE --init runs/lite3-synth/best.pt --iterations 1500 \
    --eval-every 250
step evals/val-lite3-synth-cuhk/results.json $BIN/blursynth_train evaluate \
    --dataset data/cuhk-tiles3 --split val --model lite3-synth=runs/lite3-synth-cuhk/best.pt \
    --postprocess guided --out evals/val-lite3-synth-cuhk -q
