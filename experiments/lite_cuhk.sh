#!/usr/bin/env bash
# Issue 22, first round: the liteunet family (EfficientNet-Lite0 from ImageNet, stem and
# first 11 blocks frozen, U-Net decoder) trained on the 800 CUHK images (their 644 training
# images' tiles; best.pt chosen by mean IoU on 240 validation tiles), 2- and 3-class, then
# scored on the 156 validation images. The shipped `bundled` and `types` weights are these
# runs' best.pt, exported (README: "Pretrained weights").
source "$(dirname "$0")/steps.sh"

step data/cuhk-tiles/SHA256SUMS $BIN/blursynth tiles --source shi --root "$SHARED/cuhk" \
    --out data/cuhk-tiles --no-jitter --jobs 2 -q
step data/cuhk-tiles3/SHA256SUMS $BIN/blursynth tiles --source shi --root "$SHARED/cuhk" \
    --out data/cuhk-tiles3 --classes 3 --no-jitter --jobs 2 -q
step runs/lite-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles --out runs/lite-cuhk \
    $LITE --iterations 2000 --eval-every 250
step runs/lite3-cuhk/summary.json $BIN/blursynth_train fit data/cuhk-tiles3 \
    --out runs/lite3-cuhk $LITE --iterations 2000 --eval-every 250
