"""What a run shows and writes as it goes: the progress bar, ``log.csv`` and
``curves.png`` (and TensorBoard), messages, and Ctrl-C turned into a clean stop.
"""

from __future__ import annotations

import csv
import io
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import click

from blursynth.imageio import write_text
from blursynth.progress import progressbar
from blursynth_train.plots import plot_curves, read_log

LOG_FIELDS = (
    "iteration",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_miou",
    "lr",
    "samples_per_s",
    "elapsed_s",
)


class TrainProgress:
    """A live progress bar over the steps, showing the running loss and the rate.

    The loss is read from the device every :attr:`every` steps only, so the bar costs no
    host sync on the other steps; a quiet bar reads nothing (the GPU queue never drains).
    """

    every = 25

    def __init__(self, steps: int, quiet: bool):
        self._cm = progressbar(length=steps, label="train", quiet=quiet, show_item=True)
        self.quiet = quiet
        self._k = 0
        self._text = ""

    def __enter__(self) -> TrainProgress:
        self.bar = self._cm.__enter__()
        return self

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)

    def step(self, meter, samples: int, run) -> None:
        """One step done: ``meter`` (:class:`blursynth_train.fit.RunningMeter`) and ``run``
        (:class:`blursynth_train.fit.Run`) give the running loss and the rate."""
        if self.quiet:
            return
        self._k += 1
        if self._k % self.every == 0:
            loss, acc = meter.means()
            rate = (samples - run.marked_samples) / max(time.perf_counter() - run.t_mark, 1e-9)
            self._text = f"loss {loss:.4f} acc {acc:.3f} {rate:.0f} samples/s"
        self.bar.update(1, self._text)


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [{**r, "iteration": int(r["iteration"])} for r in read_log(path)]


def write_logs(out: Path, rows: list[dict], tb, title: str) -> None:
    """Rewrite ``log.csv`` and ``curves.png`` (one row per evaluation: small); add the last
    row to TensorBoard."""
    text = io.StringIO()
    writer = csv.DictWriter(text, LOG_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(dict(zip(LOG_FIELDS, _log_cells(r), strict=True)) for r in rows)
    write_text(out / "log.csv", text.getvalue())
    plot_curves(rows, out / "curves.png", title=title)
    if tb is not None:
        for key in LOG_FIELDS[1:]:
            if rows[-1].get(key) is not None:
                tb.add_scalar(key, rows[-1][key], rows[-1]["iteration"])
        tb.flush()


def _log_cells(row: dict) -> list[str]:
    """A log row's cells; a number it lacks (a row logged before the field existed, e.g.
    ``val_miou`` on resume of an older run) is left empty, which :func:`read_log` reads
    back as ``None``."""
    cells = []
    for k in LOG_FIELDS:
        v = row.get(k)
        cells.append("" if v is None else str(int(v)) if k == "iteration" else f"{v:.6g}")
    return cells


def progress_line(row: dict, iterations: int, batch_size: int) -> str:
    it = int(row["iteration"])
    eta_h = (iterations - it) * batch_size / max(row["samples_per_s"], 1e-9) / 3600
    return (
        f"it {it}/{iterations}  loss {row['train_loss']:.4f}  acc {row['train_acc']:.4f}  "
        f"val_loss {row['val_loss']:.4f}  val_acc {row['val_acc']:.4f}  "
        f"val_miou {row['val_miou']:.4f}  lr {row['lr']:.2e}  "
        f"{row['samples_per_s']:.0f} samples/s  eta {eta_h:.1f} h"
    )


def printer(quiet: bool):
    def say(msg: str) -> None:
        if not quiet:
            click.echo(msg, err=True)

    return say


def tensorboard_writer(out: Path, say):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        say("tensorboard is not installed; skipping TensorBoard logs")
        return None
    return SummaryWriter(str(out / "tb"))


class _StopFlag:
    requested = False


@contextmanager
def stop_requests():
    """Turn the first SIGINT/SIGTERM into a flag the loop checks between steps.

    The step in flight finishes, so the saved state is consistent; a second Ctrl-C raises
    :class:`KeyboardInterrupt` as usual. Outside the main thread no handler is installed.
    """
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.requested = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
