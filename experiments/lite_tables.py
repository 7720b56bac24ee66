"""Tables of issue 22's first round from the evaluate results (after lite_eval.sh and
lite_types_synth.sh): python experiments/lite_tables.py [evals/...results.json ...]"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT = [
    "evals/val-lite-cuhk",
    "evals/eval-lite-cuhk",
    "evals/val-lite3-cuhk",
    "evals/val-lite3-synth-cuhk",
    "evals/eval-lite3-cuhk",
    "evals/val-lite1-cuhk",
    "evals/dut-lite",
]


def main() -> None:
    for folder in sys.argv[1:] or DEFAULT:
        path = Path(folder) / "results.json"
        if not path.is_file():
            continue
        summary = json.loads(path.read_text())["summary"]
        print(f"\n## {folder} ({json.loads(path.read_text())['settings']['images']} images)")
        print("| model | mean IoU motion / defocus / all | IoU blurred / pooled | MAE | "
              "type acc. motion / defocus | pooled IoU sharp / motion / defocus |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for name, groups in summary.items():
            m, d, a = (groups.get(g, {}) for g in ("motion", "defocus", "all"))

            def f(x, key):
                return "–" if key not in x else f"{x[key]:.3f}"

            cls = " / ".join(f(a, f"iou_{c}_pooled") for c in ("sharp", "motion", "defocus"))
            print(
                f"| {name} | {f(m, 'miou')} / {f(d, 'miou')} / {f(a, 'miou')} | "
                f"{f(a, 'iou')} / {f(a, 'iou_pooled')} | {f(a, 'mae')} | "
                f"{f(m, 'type_accuracy')} / {f(d, 'type_accuracy')} | {cls} |"
            )


if __name__ == "__main__":
    main()
