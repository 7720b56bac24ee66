#!/usr/bin/env bash
# Issue 22, larger encoders (after experiments/lite_cuhk.sh and lite_eval.sh): the 2-class
# recipe with EfficientNet-Lite1 (third round) and Lite2 (fifth round) in place of Lite0,
# each with its stem and first 14 of 21 blocks frozen: the last 7 train, as the last 5 of
# Lite0's 16 do. Scored on the 156 validation images beside the Lite0 model. An interrupted
# run continues (fit_run).
source "$(dirname "$0")/steps.sh"

lite_variant lite1-cuhk lite1 --encoder lite1 --freeze-blocks 14
lite_variant lite2-cuhk lite2 --encoder lite2 --freeze-blocks 14
