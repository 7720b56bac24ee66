"""Training curves: training and validation accuracy (the report's Figure 4) and validation
mean IoU over iterations.

Drawn with matplotlib's object API on an Agg canvas, so no display and no pyplot state.
"""

from __future__ import annotations

import csv
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from blursynth.imageio import atomic_path


def read_log(path: str | Path) -> list[dict]:
    """Rows of a ``log.csv`` with numbers parsed (empty cells become ``None``)."""
    with open(path, newline="") as f:
        return [
            {k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


def plot_curves(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Write a PNG of training (running) and validation accuracy, and validation mean IoU,
    against iteration.

    Parameters
    ----------
    rows : list of dict
        Log rows with ``iteration``, ``train_acc``, ``val_acc`` and (runs logged since it
        exists) ``val_miou``.
    path : path
        The PNG to write (atomically).
    """
    series = {
        name: _points(rows, key)
        for key, name in (
            ("train_acc", "training accuracy"),
            ("val_acc", "validation accuracy"),
            ("val_miou", "validation mean IoU"),
        )
    }
    values = [y for pts in series.values() for _, y in pts if y == y]  # NaN-free
    low = min([0.4, *(v - 0.05 for v in values)])
    return _plot(series, path, title, "accuracy / mean IoU", ylim=(max(low, 0.0), 1.01))


def plot_runs(
    runs: dict[str, list[dict]], path: str | Path, title: str = "", key: str = "val_acc"
) -> Path:
    """Write a PNG comparing one logged quantity (validation accuracy) of several runs."""
    series = {name: _points(rows, key) for name, rows in runs.items()}
    return _plot(series, path, title, key.replace("_", " "))


def _points(rows: list[dict], key: str) -> list[tuple[float, float]]:
    return [(r["iteration"], r[key]) for r in rows if r.get(key) is not None]


def _plot(series: dict[str, list], path, title: str, ylabel: str, ylim=None) -> Path:
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, pts in series.items():
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="." if len(pts) < 50 else None, label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.12, top=0.92)  # one draw, not two
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
