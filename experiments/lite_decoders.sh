#!/usr/bin/env bash
# Issue 22, sixth round: the shipped 2-class recipe (lite_cuhk.sh: Lite0, stem and first 11
# blocks frozen, 2,000 iterations) with the other decoders the issue names: a feature pyramid
# merged at stride 4 (`--decoder-kind fpn`) and a refinement stage at the input's resolution
# (`--refine full`), each scored on the 156 validation images beside `bundled`.
# `bash experiments/lite_decoders.sh fpn` or `... refine` runs one variant (two can run side
# by side, e.g. with OMP_NUM_THREADS=1 each); an interrupted run continues (fit_run).
source "$(dirname "$0")/steps.sh"

case "${1:-all}" in
    fpn) lite_variant lite-fpn-cuhk lite-fpn --decoder-kind fpn ;;
    refine) lite_variant lite-refine-cuhk lite-refine --refine full ;;
    all)
        lite_variant lite-fpn-cuhk lite-fpn --decoder-kind fpn
        lite_variant lite-refine-cuhk lite-refine --refine full
        ;;
    *) echo "usage: $0 [fpn|refine|all]" >&2; exit 2 ;;
esac
