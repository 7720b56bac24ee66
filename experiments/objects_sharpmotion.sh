#!/usr/bin/env bash
# Issue 11's proof, fifth round (experiments/LOG.md, "Sharp backgrounds for motion only"): the
# sharp-background renderings of experiments/objects_sharpbg.sh for the motion and pan images, the
# any-background renderings of experiments/objects_pan.sh for the defocus images (mixed images
# left out: `tiles --only` selects by blur type), trained together on synthetic data alone
# and chosen on the CUHK validation tiles; and, as its reference, the same with the
# any-background motion and pan images. After experiments/objects_pan.sh and experiments/objects_sharpbg.sh.
source "$(dirname "$0")/steps.sh"

RECIPE="--arch unet --batch-size 8 --crop 128 --augment --optimizer adamw --weight-decay 1e-4 \
    --lr-schedule cosine --workers 0 --lr 2e-3 -q"
REALVAL="--iterations 3000 --eval-every 500 --val-rows 0 --val-dataset data/cuhk-tiles"

# only_tiles RUN TYPE: the TYPE images (motion: motion and pan) of synth/RUN as tiles
only_tiles() {
    step "data/$1-$2-tiles/SHA256SUMS" $BIN/blursynth tiles --source synth --root "synth/$1" \
        --only "$2" --out "data/$1-$2-tiles" --eval-images 0 --jobs 2 -q
}
only_tiles objects-sharpbg motion
only_tiles objects-every motion
only_tiles objects-every defocus

# both with training seed 0, then both again with seed 1 (the spread of a seed)
for seed in 0 1; do
    for motion in objects-sharpbg objects-every; do
        name=v-$motion-motion-every-defocus-realval$([ "$seed" = 0 ] || echo "-seed$seed")
        step "runs/$name/summary.json" $BIN/blursynth_train fit "data/$motion-motion-tiles" \
            data/objects-every-defocus-tiles --out "runs/$name" $RECIPE $REALVAL --seed "$seed"
        step "evals/val-$name/results.json" $BIN/blursynth_train evaluate \
            --dataset data/cuhk-tiles --split val --model "$name=runs/$name/best.pt" \
            --out "evals/val-$name" -q
    done
done
