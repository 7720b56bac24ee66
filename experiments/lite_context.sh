#!/usr/bin/env bash
# Issue 22, fifth round: the shipped 2-class recipe (lite_cuhk.sh: Lite0, stem and first 11
# blocks frozen, 2,000 iterations) with a pyramid pooling module before the decoder
# (`--context ppm`: means over 1, 2, 3 and 6 bins of the whole input), scored on the 156
# validation images beside `bundled`. An interrupted run continues (fit_run).
source "$(dirname "$0")/steps.sh"

lite_variant lite-ppm-cuhk lite-ppm --context ppm
