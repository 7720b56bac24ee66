"""The seed study of issue 22 (experiments/lite_synth_seeds.sh): every arm's runs scored on
the 156 CUHK validation images, each seed and the mean ± spread (sample standard deviation)
of what is finished. Run from the repository root: python experiments/lite_seed_table.py"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

ARMS = {  # arm: (evals folder, model name) per seed 0, 1, 2
    "2 classes, CUHK alone": [("val-lite-cuhk", "lite")]
    + [(f"val-lite-cuhk-s{s}", f"lite-cuhk-s{s}") for s in (1, 2)],
    "2 classes, renderings then CUHK": [
        (f"val-lite-synth-cuhk-s{s}", f"lite-synth-cuhk-s{s}") for s in (0, 1, 2)
    ],
    "2 classes, renderings alone": [
        (f"val-lite-synth-only-s{s}", f"lite-synth-only-s{s}") for s in (0, 1, 2)
    ],
    "3 classes, CUHK alone": [("val-lite3-cuhk", "lite3")]
    + [(f"val-lite3-cuhk-s{s}", f"lite3-cuhk-s{s}") for s in (1, 2)],
    "3 classes, renderings then CUHK": [("val-lite3-synth-cuhk", "lite3-synth")]
    + [(f"val-lite3-synth-cuhk-s{s}", f"lite3-synth-cuhk-s{s}") for s in (1, 2)],
}
COLUMNS = (  # (group, metric) of evaluate's summary
    ("motion", "miou"),
    ("defocus", "miou"),
    ("all", "miou"),
    ("motion", "type_accuracy"),
    ("defocus", "type_accuracy"),
    ("all", "iou_motion_pooled"),
)


def cell(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def finished(runs: list[tuple[str, str]]) -> list[tuple[int, dict]]:
    """``(seed, summary)`` of each finished run of an arm."""
    scores = []
    for seed, (folder, model) in enumerate(runs):
        path = Path("evals") / folder / "results.json"
        if path.is_file():
            scores.append((seed, json.loads(path.read_text())["summary"][model]))
    return scores


def main() -> None:
    print("| arm | seeds done | mean IoU motion | defocus | all | type acc. motion | defocus "
          "| pooled IoU motion class |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    done = {arm: finished(runs) for arm, runs in ARMS.items()}
    for arm, scores in done.items():
        cells = [cell([s[g][m] for _, s in scores if m in s.get(g, {})]) for g, m in COLUMNS]
        seeds = ", ".join(str(seed) for seed, _ in scores) or "none"
        print(f"| {arm} | {seeds} | " + " | ".join(cells) + " |")
    print("\nEach seed, mean IoU all / motion:\n")
    print("| arm | seed 0 | seed 1 | seed 2 |\n|---|---|---|---|")
    for arm, runs in ARMS.items():
        by_seed = dict(done[arm])
        row = [
            f"{by_seed[k]['all']['miou']:.3f} / {by_seed[k]['motion']['miou']:.3f}"
            if k in by_seed
            else "–"
            for k in range(len(runs))
        ]
        print(f"| {arm} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
