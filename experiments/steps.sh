# Sourced (not run) by the experiment scripts of docs/: strict mode, the repository root as
# the working folder, the shared data, the venv's commands and `step`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SHARED="${BLURSYNTH_SHARED_DATA:-../shared/data}"
BIN=.venv/bin
# step TARGET COMMAND...: run COMMAND unless TARGET exists, so a finished step is skipped and
# an interrupted script continues where it stopped
step() { [ -e "$1" ] && echo "skip $1" || { echo "== $1 ($(date -u +%T))"; shift; "$@"; }; }

# fit_run OUT FIT-ARGS...: `blursynth_train fit FIT-ARGS --out OUT` unless OUT holds a
# summary; an interrupted run (OUT/last.pt) continues with --resume, so a script can be run
# again across sessions until it is complete
fit_run() {
    local out=$1
    shift
    if [ -e "$out/summary.json" ]; then echo "skip $out"; return; fi
    echo "== $out ($(date -u +%T))"
    if [ -e "$out/last.pt" ]; then
        $BIN/blursynth_train fit "$@" --out "$out" --resume
    else
        $BIN/blursynth_train fit "$@" --out "$out"
    fi
}

# variant NAME GENERATE-OPTIONS...: render ECSSD/DUTS photographs with the options into
# synth/NAME, tile them (data/NAME-tiles), train a dense U-Net on them alone with
# $VARIANT_RECIPE (runs/v-NAME-only) and score it on the CUHK validation images
# (evals/val-v-NAME-only; data/cuhk-tiles from experiments/objects_experiments.sh)
variant() {
    local name=$1
    shift
    step "synth/$name/records.jsonl" $BIN/blursynth generate --objects "$SHARED/ecssd" \
        --objects "$SHARED/duts-subset" --out "synth/$name" --seed 0 -j 2 -q "$@"
    step "data/$name-tiles/SHA256SUMS" $BIN/blursynth tiles --source synth \
        --root "synth/$name" --out "data/$name-tiles" --eval-images 0 --jobs 2 -q
    step "runs/v-$name-only/summary.json" $BIN/blursynth_train fit "data/$name-tiles" \
        --out "runs/v-$name-only" $VARIANT_RECIPE
    step "evals/val-v-$name-only/results.json" $BIN/blursynth_train evaluate \
        --dataset data/cuhk-tiles --split val --model "v-$name-only=runs/v-$name-only/best.pt" \
        --out "evals/val-v-$name-only" -q
}

# variant_seed NAME SEED: the model of `variant NAME` again with another training seed
# (weights, batch order, augmentation): the spread of training alone
variant_seed() {
    local name=$1 seed=$2
    step "runs/v-$name-only-seed$seed/summary.json" $BIN/blursynth_train fit \
        "data/$name-tiles" --out "runs/v-$name-only-seed$seed" $VARIANT_RECIPE --seed "$seed"
    step "evals/val-v-$name-only-seed$seed/results.json" $BIN/blursynth_train evaluate \
        --dataset data/cuhk-tiles --split val \
        --model "v-$name-only-seed$seed=runs/v-$name-only-seed$seed/best.pt" \
        --out "evals/val-v-$name-only-seed$seed" -q
}
