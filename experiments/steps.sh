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

# LITE: the shipped 2-class liteunet recipe (experiments/lite_cuhk.sh: `bundled`), the base
# of every issue-22 script; a variant adds options after it (the last value of an option wins)
LITE="--arch liteunet --encoder lite0 --pretrained imagenet --freeze-blocks 11 --batch-size 8 \
    --crop 224 --augment --optimizer adamw --lr 1e-3 --weight-decay 1e-4 --lr-schedule cosine \
    --val-rows 240 --select-by miou --workers 0 -q"

# lite_variant RUN MODEL FIT-OPTIONS...: $LITE with FIT-OPTIONS for 2,000 iterations on the
# CUHK tiles ($LITE_DATA, default data/cuhk-tiles) into runs/RUN (resumed if interrupted),
# then scored as MODEL on the 156 validation images into evals/val-RUN (with the guided
# filter beside the raw maps)
lite_variant() {
    local run=$1 model=$2
    shift 2
    fit_run "runs/$run" "${LITE_DATA:-data/cuhk-tiles}" $LITE "$@" --iterations 2000 \
        --eval-every 250
    step "evals/val-$run/results.json" $BIN/blursynth_train evaluate --dataset data/cuhk-tiles \
        --split val --model "$model=runs/$run/best.pt" --postprocess guided \
        --out "evals/val-$run" -q
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
