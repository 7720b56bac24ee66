"""Print the dense-segmenter tables of experiments/LOG.md from the evaluate outputs.

    python experiments/dense_tables.py            # after experiments/dense_experiments.sh

Reads ``evals/val-*/results.json`` (models on the 156 validation images) and
``evals/heldout/results.json`` (the chosen models, the report CNN and baselines on the 20
held-out images); prints Markdown.
"""

from __future__ import annotations

import json
from pathlib import Path

GROUPS = ("motion", "defocus", "all")
COLUMNS = ("miou", "iou", "iou_pooled", "f_beta", "mae")
TITLES = ("mean IoU", "IoU (blurred)", "IoU pooled", "F0.3 @0.5", "MAE")


def rows(summary: dict, names=None) -> list[str]:
    out = []
    for name, groups in summary.items():
        if names is not None and name not in names:
            continue
        for group in GROUPS:
            g = groups[group]
            if not g.get("n"):
                continue
            cells = [f"{g[k]:.3f}" if k in g else "–" for k in COLUMNS]
            extra = [f"{g[k]:.3f}" for k in ("type_accuracy",) if k in g]
            out.append(
                f"| {name} | {group} ({g['n']}) | " + " | ".join(cells + (extra or ["–"])) + " |"
            )
    return out


def table(lines: list[str]) -> str:
    head = "| method | images | " + " | ".join(TITLES) + " | blur-type acc. |"
    return "\n".join([head, "|" + "---|" * (len(TITLES) + 3), *lines])


def main() -> None:
    root = Path("evals")
    val = []
    for path in sorted(root.glob("val-*/results.json")):
        summary = json.loads(path.read_text())["summary"]
        val += rows(summary, [n for n in summary if n != "all-blurred"])
    print("## Validation (156 images)\n")
    print(table(val))
    held = root / "heldout" / "results.json"
    if held.is_file():
        print("\n## Held out (20 images)\n")
        print(table(rows(json.loads(held.read_text())["summary"])))


if __name__ == "__main__":
    main()
