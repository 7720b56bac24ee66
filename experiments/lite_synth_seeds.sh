#!/usr/bin/env bash
# Issue 22: the synthetic data measured again on the pretrained-encoder model, three training
# seeds per arm. The recipe is lite_cuhk.sh's (2,000 iterations in all); the renderings are
# lite_types_synth.sh's (synth/objects-every: 2,000 ECSSD/DUTS images, every blur model and
# camera option but JPEG). Arms, 2 classes:
#   cuhk        CUHK alone (seed 0 is runs/lite-cuhk, the shipped `bundled`)
#   synth-cuhk  500 iterations on the renderings, then 1,500 on CUHK (fit --init)
#   synth       the renderings alone, 2,000 iterations
# and 3 classes: lite3-cuhk (seed 0: `types`) against lite3-synth-cuhk (seed 0 made by
# lite_types_synth.sh). Runs come in the order that answers most first; every step is
# skipped once done, and an interrupted run continues from its last.pt (--resume), so the
# script can be run again across sessions until it is complete. Scored on the 156 CUHK
# validation images (evals/val-*); experiments/lite_seed_table.py prints the table.
#
# With arguments, it runs only the steps named, in order, e.g. two streams side by side
# with one thread each (on the 2-core VM two 1-thread training steps make 1.13-1.23x the
# crops per second of one 2-thread step: docs/benchmarks.md, "dense"):
#   OMP_NUM_THREADS=1 bash experiments/lite_synth_seeds.sh "cuhk_only 2 2" "synth_only 1"
#   OMP_NUM_THREADS=1 bash experiments/lite_synth_seeds.sh "synth_cuhk 2 2" "synth_only 2"
# Two streams must not name the same step: a run folder is locked by the run that writes it.
source "$(dirname "$0")/steps.sh"

# score NAME CLASSES: evaluate runs/NAME/best.pt on the 156 validation images
score() {
    local tiles=data/cuhk-tiles
    [ "$2" = 3 ] && tiles=data/cuhk-tiles3
    step "evals/val-$1/results.json" $BIN/blursynth_train evaluate --dataset "$tiles" \
        --split val --model "$1=runs/$1/best.pt" --postprocess guided --out "evals/val-$1" -q
}

synth_cuhk() {  # synth_cuhk SEED CLASSES: pre-train on renderings, then CUHK
    local seed=$1 c=$2 pre post tiles=data/objects-every-tiles cuhk=data/cuhk-tiles
    [ "$c" = 3 ] && { tiles=data/objects-every-tiles3; cuhk=data/cuhk-tiles3; }
    pre="runs/lite${c/2/}-synth-s$seed" post="lite${c/2/}-synth-cuhk-s$seed"
    fit_run "$pre" "$tiles" $LITE --val-dataset "$cuhk" --iterations 500 --eval-every 250 \
        --seed "$seed"
    fit_run "runs/$post" "$cuhk" $LITE --init "$pre/best.pt" --iterations 1500 --eval-every 250 \
        --seed "$seed"
    score "$post" "$c"
}

cuhk_only() {  # cuhk_only SEED CLASSES
    local seed=$1 c=$2 name cuhk=data/cuhk-tiles
    [ "$c" = 3 ] && cuhk=data/cuhk-tiles3
    name="lite${c/2/}-cuhk-s$seed"
    fit_run "runs/$name" "$cuhk" $LITE --iterations 2000 --eval-every 250 --seed "$seed"
    score "$name" "$c"
}

synth_only() {  # synth_only SEED: 2 classes, the renderings alone
    local name="lite-synth-only-s$1"
    fit_run "runs/$name" data/objects-every-tiles $LITE --val-dataset data/cuhk-tiles \
        --iterations 2000 --eval-every 250 --seed "$1"
    score "$name" 2
}

step data/objects-every-tiles/SHA256SUMS $BIN/blursynth tiles --source synth \
    --root synth/objects-every --out data/objects-every-tiles --eval-images 0 --jobs 2 -q
if [ $# -gt 0 ]; then
    for named in "$@"; do
        read -r fn args <<<"$named"
        case "$fn" in
            cuhk_only | synth_cuhk | synth_only) $fn $args ;;
            *) echo "unknown step: $named (cuhk_only|synth_cuhk SEED CLASSES, synth_only SEED)" >&2
               exit 2 ;;
        esac
    done
    exit 0
fi
synth_cuhk 0 2
cuhk_only 1 2
synth_cuhk 1 2
synth_only 0
cuhk_only 2 2
synth_cuhk 2 2
synth_only 1
synth_only 2
cuhk_only 1 3
synth_cuhk 1 3
cuhk_only 2 3
synth_cuhk 2 3
