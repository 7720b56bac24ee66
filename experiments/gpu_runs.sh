#!/usr/bin/env bash
# The GPU runs of issues 10 and 13, in stages, for a lent GPU machine (what they gave is in
# experiments/LOG.md and docs/benchmarks.md). The machine has torch and our dependencies, so
# blursynth runs from this checkout (PYTHONPATH), and nothing is installed. CUHK travels in
# parts (folders .gpu/PART holding image/ and gt/, named in the device call's carry) that
# `setup` gathers under $GPU_WORK (default /root/work), where all work goes.
#
#   bash experiments/gpu_runs.sh setup PART       # check the GPU; add one part of CUHK
#   bash experiments/gpu_runs.sh bench            # training step of each family: fp32/bf16/compile
#   bash experiments/gpu_runs.sh build            # cuhk-both patches; cuhk-tiles, 2 and 3 classes
#   bash experiments/gpu_runs.sh train MINUTES    # start the three runs in the background
#   bash experiments/gpu_runs.sh watch SECONDS    # progress, until they end or SECONDS pass
#   bash experiments/gpu_runs.sh finish OUTDIR    # stop what runs; export; segment speed; pack logs
#
# `train` sizes the U-Net runs to end in about MINUTES from the `bench` rates (two U-Nets and
# the report CNN share the GPU) and turns on --compile / --bf16 where `bench` found them
# faster. The report CNN runs the report's recipe (1M iterations); `finish` stops it with
# SIGTERM if it has not ended (fit ends the step in flight and saves last.pt) and exports
# the best state so far. (Not SIGINT: a non-interactive shell starts background jobs with
# SIGINT ignored, so a SIGINT that came before fit's training loop would be lost.)
# A CPU rehearsal (with cuhk-mini copied to .gpu/mini as the part), every stage in order:
#   GPU_DEVICE=cpu GPU_JOBS=2 GPU_EVAL_IMAGES=2 GPU_UNET_ITERS=4 GPU_REPORT_ITERS=4
#   GPU_BENCH_STEPS=2 GPU_TRAIN_PATCHES=20000 GPU_SEGMENT_IMAGES=4 GPU_WORK=/tmp/w
#   bash experiments/gpu_runs.sh setup mini (then bench, build, train 1, watch 600, finish /tmp/w/out)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
W="${GPU_WORK:-/root/work}"
PY="${PYTHON:-python3}"
DEVICE="${GPU_DEVICE:-cuda}"
JOBS="${GPU_JOBS:-16}"
EVAL_IMAGES="${GPU_EVAL_IMAGES:-20}"
RUNS=(cuhk-report unet-gpu unet3-gpu)
mkdir -p "$W/logs" "$W/runs"
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

case "$1" in
setup)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$PY" -c "import torch, h5py, cv2; print('torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), 'h5py', h5py.__version__, 'cv2', cv2.__version__)"
    mkdir -p "$W/cuhk/image" "$W/cuhk/gt"
    cp -r ".gpu/$2/image/." "$W/cuhk/image/"
    cp -r ".gpu/$2/gt/." "$W/cuhk/gt/"
    echo "CUHK so far: $(ls "$W/cuhk/image" | wc -l) images, $(ls "$W/cuhk/gt" | wc -l) masks"
    ;;
bench)
    steps_b="${GPU_BENCH_STEPS:-300}" steps_u="${GPU_BENCH_STEPS:-60}"
    "$PY" benchmarks/bench_train.py --device "$DEVICE" --compile --no-data --steps "$steps_b" \
        --json "$W/logs/bench-blurnet.json" | tee "$W/logs/bench-blurnet.md"
    "$PY" benchmarks/bench_train.py --device "$DEVICE" --compile --no-data --steps "$steps_u" \
        --arch unet --batch-size 32 --crop 256 --json "$W/logs/bench-unet.json" \
        | tee "$W/logs/bench-unet.md"
    ;;
build)
    t0=$SECONDS
    bs patches --source shi --root "$W/cuhk" --out "$W/data/cuhk-both" --seed 0 \
        --train-patches "${GPU_TRAIN_PATCHES:-1000000}" --eval-images "$EVAL_IMAGES" -j "$JOBS" -q
    bs tiles --source shi --root "$W/cuhk" --out "$W/data/cuhk-tiles" --no-jitter \
        --eval-images "$EVAL_IMAGES" -j "$JOBS" -q
    bs tiles --source shi --root "$W/cuhk" --out "$W/data/cuhk-tiles3" --classes 3 \
        --no-jitter --eval-images "$EVAL_IMAGES" -j "$JOBS" -q
    echo "built in $((SECONDS - t0)) s"
    ;;
train)
    minutes="$2"
    bench_unet="$W/logs/bench-unet.json"
    precision="$(faster "$bench_unet" fp32 bf16 bf16)"
    unet_flags="$(faster "$bench_unet" "${precision:-fp32}" "${precision:-fp32} + compile" \
        --compile) ${precision:+--bf16}"
    report_flags="$(faster "$W/logs/bench-blurnet.json" "fp32" "fp32 + compile" --compile)"
    iters="${GPU_UNET_ITERS:-$("$PY" - "$W/logs/bench-unet.json" "$minutes" <<'EOF'
import json, sys
rates = json.load(open(sys.argv[1]))["samples_per_s"]
rate = max(rates.values())
# two U-Nets and the report CNN share the GPU: each U-Net gets ~40 % of it
iters = rate * 0.4 * float(sys.argv[2]) * 60 / 32
print(max(2000, min(100_000, int(iters) // 1000 * 1000)))
EOF
)}"
    every=$(((iters + 9) / 10))
    echo "U-Net: $iters iterations (eval every $every) $unet_flags; report CNN $report_flags"
    date -u +%FT%TZ >"$W/logs/started"
    start() {  # name, then fit's arguments: detached, so it outlives this call
        # the process writes its own pid (setsid may fork)
        setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$W/logs/$1.pid" \
            "$PY" -m blursynth_train.cli fit "${@:2}" --out "$W/runs/$1" --device "$DEVICE" -q \
            >"$W/logs/$1.log" 2>&1 </dev/null &
    }
    start cuhk-report "$W/data/cuhk-both" --iterations "${GPU_REPORT_ITERS:-1000000}" \
        --eval-every "${GPU_REPORT_EVERY:-50000}" --val-rows 65536 $report_flags
    unet=(--arch unet --batch-size 32 --augment --optimizer adamw --lr 2e-3
        --weight-decay 1e-4 --lr-schedule cosine --iterations "$iters" --eval-every "$every"
        --val-rows 966 $unet_flags)
    start unet-gpu "$W/data/cuhk-tiles" "${unet[@]}"
    start unet3-gpu "$W/data/cuhk-tiles3" "${unet[@]}"
    ;;
watch)
    end=$((SECONDS + $2))
    while :; do
        line="t=${SECONDS}s"
        for r in "${RUNS[@]}"; do
            last="$(tail -n 1 "$W/runs/$r/log.csv" 2>/dev/null | cut -d, -f1,5,8 || true)"
            state=running
            [ -e "$W/runs/$r/summary.json" ] && state=done
            kill -0 "$(cat "$W/logs/$r.pid")" 2>/dev/null || [ $state = done ] || state=stopped
            line+="  $r [$state] ${last:-(no eval yet)}"
        done
        echo "$line  gpu $(nvidia-smi --query-gpu=utilization.gpu,memory.used \
            --format=csv,noheader 2>/dev/null || echo -)"
        unets_done=1
        for r in unet-gpu unet3-gpu; do
            kill -0 "$(cat "$W/logs/$r.pid")" 2>/dev/null && unets_done=0
        done
        report_done=1
        kill -0 "$(cat "$W/logs/cuhk-report.pid")" 2>/dev/null && report_done=0
        { [ $unets_done = 1 ] && [ $report_done = 1 ]; } || [ $SECONDS -ge $end ] && break
        sleep 20
    done
    tail -n 3 "$W"/logs/*.log
    ;;
finish)
    out="$2"
    mkdir -p "$out"
    for r in "${RUNS[@]}"; do  # SIGTERM: the step in flight ends, last.pt is saved
        pid="$(cat "$W/logs/$r.pid")"
        if kill -0 "$pid" 2>/dev/null; then
            echo "stopping $r"
            kill -TERM "$pid"
            while kill -0 "$pid" 2>/dev/null; do sleep 1; done
        fi
    done
    date -u +%FT%TZ >"$W/logs/finished"
    export_run() {  # run, dataset, file
        local ckpt="$W/runs/$1/best.pt"
        [ -e "$ckpt" ] || ckpt="$W/runs/$1/last.pt"
        bt export "$ckpt" --out "$out/$3" --dataset "$W/data/$2"
    }
    export_run unet-gpu cuhk-tiles unet-gpu.pt
    export_run unet3-gpu cuhk-tiles3 unet3-gpu.pt
    export_run cuhk-report cuhk-both blurnet-gpu.pt
    # end-to-end segment speed (decode, model, guided filter, PNGs written) on 96 CUHK images
    mapfile -t imgs < <(ls "$W"/cuhk/image/* | head -n "${GPU_SEGMENT_IMAGES:-96}")
    for m in unet-gpu unet3-gpu blurnet-gpu; do
        t0=$EPOCHREALTIME
        bt segment "${imgs[@]}" --model "$out/$m.pt" --out "$W/seg-$m" --batch 16 \
            --device "$DEVICE" -q || true
        s="$("$PY" -c "print(f'{$EPOCHREALTIME - $t0:.1f}')")"
        echo "segment $m: ${#imgs[@]} images in $s s" | tee -a "$W/logs/segment-speed.txt"
    done
    "$PY" benchmarks/bench_dense.py --device "$DEVICE" --unet "$out/unet-gpu.pt" \
        --report "$out/blurnet-gpu.pt" | tee "$W/logs/bench-dense.txt"
    files=(logs)
    for r in "${RUNS[@]}"; do
        for f in config.json log.csv curves.png summary.json; do
            [ -e "$W/runs/$r/$f" ] && files+=("runs/$r/$f")
        done
    done
    tar czf "$out/gpu-logs.tar.gz" -C "$W" "${files[@]}"
    ls -la "$out"
    ;;
*)
    echo "unknown stage $1" >&2
    exit 2
    ;;
esac
