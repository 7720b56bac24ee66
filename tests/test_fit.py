"""Training: it learns, it is deterministic, resume is exact, errors are one line."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from _trees import make_patch_dataset
from click.testing import CliRunner

from blursynth.errors import BlursynthError
from blursynth_train.checkpoint import load_checkpoint, load_model
from blursynth_train.cli import main
from blursynth_train.fit import FitConfig, fit, lr_at

OUTPUTS = ("config.json", "log.csv", "curves.png", "last.pt", "best.pt", "summary.json")


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_patch_dataset(tmp_path_factory.mktemp("fit") / "ds", n_train=320, n_val=96)


@pytest.fixture(autouse=True)
def _one_thread():
    # bitwise comparisons need the same thread count in both runs; also keeps CI polite
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _config(shards, out, **kw) -> FitConfig:
    base = dict(
        datasets=shards,
        out=out,
        batch_size=4,
        lr=3e-3,
        iterations=3,
        eval_every=3,
        val_rows=16,
        workers=0,
        quiet=True,
    )
    return FitConfig(**{**base, **kw})


def _weights(path) -> dict:
    return load_checkpoint(path)["model_state"]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_training_learns(shards, tmp_path):
    result = fit(
        _config(shards, tmp_path / "run", batch_size=8, iterations=40, eval_every=20, val_rows=64)
    )
    with open(tmp_path / "run" / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == [20, 40]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert result.final_val_acc > 0.7
    for name in OUTPUTS:
        assert (tmp_path / "run" / name).is_file(), name
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["iteration"] == 40 and summary["device"] == "cpu"
    assert summary["best_val_acc"] >= summary["final_val_acc"]
    model, payload = load_model(tmp_path / "run" / "best.pt")
    assert payload["iteration"] == summary["best_iteration"]
    assert (
        payload["extra"]["manifest_sha256"]
        == json.loads((tmp_path / "run" / "config.json").read_text())["dataset"]["manifest_sha256"]
    )
    assert payload["train_config"]["lr"] == 3e-3


def test_same_seed_same_weights(shards, tmp_path):
    fit(_config(shards, tmp_path / "a", seed=7))
    fit(_config(shards, tmp_path / "b", seed=7))
    fit(_config(shards, tmp_path / "c", seed=8))
    a, b, c = (_weights(tmp_path / r / "last.pt") for r in "abc")
    assert _same(a, b)
    assert not _same(a, c)


@pytest.mark.parametrize("on_device, workers", [("yes", 0), ("no", 1)])
def test_resume_equals_uninterrupted(tmp_path, on_device, workers):
    # 24 rows at batch 4: 6 batches an epoch, so iterations 3..8 cross an epoch boundary;
    # augmentation and dropout draw random numbers, so the saved RNG states matter too
    shards = make_patch_dataset(tmp_path / "ds", n_train=24, n_val=8)
    kw = dict(data_on_device=on_device, workers=workers, augment=True, eval_every=4)
    fit(_config(shards, tmp_path / "full", iterations=8, **kw))
    fit(_config(shards, tmp_path / "half", iterations=3, **kw))
    fit(_config(shards, tmp_path / "half", iterations=8, resume=True, **kw))
    full, resumed = tmp_path / "full" / "last.pt", tmp_path / "half" / "last.pt"
    assert _same(_weights(full), _weights(resumed))
    a, b = load_checkpoint(full)["optimizer_state"], load_checkpoint(resumed)["optimizer_state"]
    assert all(
        torch.equal(a["state"][k]["momentum_buffer"], b["state"][k]["momentum_buffer"])
        for k in a["state"]
    )
    log = (tmp_path / "half" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in log[1:]] == ["3", "4", "8"]


def test_interrupt_saves_and_resumes(shards, tmp_path, monkeypatch):
    import blursynth_train.fit as fit_module

    sent = []

    def lr_then_ctrl_c(iteration, *args, **kwargs):  # the schedule's next rate, in each step
        if iteration == 6 and not sent:  # asked at the end of the sixth step: it finishes
            sent.append(iteration)
            os.kill(os.getpid(), signal.SIGINT)
        return lr_at(iteration, *args, **kwargs)

    monkeypatch.setattr(fit_module, "lr_at", lr_then_ctrl_c)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(BlursynthError, match="interrupted at iteration 6; .*--resume"):
        fit(_config(shards, tmp_path / "run", iterations=100_000, eval_every=100_000))
    assert signal.getsignal(signal.SIGINT) is before
    assert load_checkpoint(tmp_path / "run" / "last.pt")["iteration"] == 6
    result = fit(_config(shards, tmp_path / "run", resume=True, iterations=8))
    assert result.iteration == 8


def test_dry_run_cli(shards, tmp_path):
    out = tmp_path / "dry"
    res = CliRunner().invoke(
        main,
        [
            "fit",
            str(shards),
            "--out",
            str(out),
            "--dry-run",
            "--batch-size",
            "4",
            "--workers",
            "0",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iteration"] == 5
    assert "val_acc" in res.output


def test_cli_resume_keeps_recipe(shards, tmp_path):
    out = tmp_path / "run"
    args = ["fit", str(shards), "--out", str(out), "--workers", "0", "--quiet", "--val-rows", "8"]
    res = CliRunner().invoke(
        main,
        [*args, "--batch-size", "4", "--lr", "0.002", "--iterations", "2", "--eval-every", "2"],
    )
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, [*args, "--resume", "--iterations", "4"])
    assert res.exit_code == 0, res.output
    payload = load_checkpoint(out / "last.pt")
    assert payload["iteration"] == 4
    assert payload["train_config"]["batch_size"] == 4 and payload["train_config"]["lr"] == 0.002


def test_cli_resume_refuses_another_recipe_naming_it(shards, tmp_path):
    """A resumed run keeps its recipe: an explicit option that differs is refused, naming
    it and the run's value; the same value given again, and more --iterations, are fine."""
    out = tmp_path / "run"
    args = ["fit", str(shards), "--out", str(out), "--workers", "0", "--quiet", "--val-rows", "8"]
    first = [*args, "--batch-size", "4", "--lr", "0.002", "--iterations", "2", "--eval-every", "2"]
    assert CliRunner().invoke(main, first).exit_code == 0
    res = CliRunner().invoke(main, [*args, "--resume", "--lr", "0.01", "--augment", "--seed", "3"])
    assert res.exit_code == 2 and "a resumed run keeps its recipe" in res.output
    for named in ("--lr 0.01 (the run's: 0.002)", "--augment True", "--seed 3 (the run's: 0)"):
        assert named in res.output
    assert load_checkpoint(out / "last.pt")["iteration"] == 2  # nothing ran
    res = CliRunner().invoke(main, [*args, "--resume", "--lr", "0.002", "--iterations", "3"])
    assert res.exit_code == 0, res.output


def test_options_a_family_does_not_take_are_refused_at_the_cli(shards, tmp_path):
    """--crop cuts windows of label maps: a patch model's labels are centre pixels."""
    args = ["fit", str(shards), "--out", str(tmp_path / "r"), "--arch", "blurnet"]
    res = CliRunner().invoke(main, [*args, "--crop", "16"])
    assert res.exit_code == 2 and "--crop: not an option of the blurnet family" in res.output
    res = CliRunner().invoke(main, [*args, "--freeze-blocks", "3"])
    assert res.exit_code == 2 and "--freeze-blocks: not an option" in res.output
    assert not (tmp_path / "r").exists()


def test_the_schedule_is_a_torch_scheduler_with_a_rate_per_group(shards, tmp_path):
    """Cosine over the run: every group at its own starting rate times the schedule's factor
    (a model's groups may start at different rates), and the scheduler's state in each
    checkpoint is on the checkpoint's iteration."""
    import torch

    from blursynth_train.fit import make_optimizer, make_scheduler

    class Two(torch.nn.Module):  # a family with a slower group, as liteunet's encoder
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 2, bias=False)

        def parameter_groups(self):
            return [("a", [self.a.weight], 1.0), ("b", [self.b.weight], 0.5)]

    cfg = _config(shards, tmp_path / "x", lr=0.1, lr_schedule="cosine", optimizer="adamw")
    optimizer = make_optimizer(Two(), cfg)
    scheduler = make_scheduler(optimizer, cfg, iterations=10, start=5)
    rates = [g["lr"] for g in optimizer.param_groups]
    assert rates == pytest.approx([0.05, 0.025])  # cos(pi/2): half the starting rates
    optimizer.step()
    scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(
        [0.1 * lr_at(6, 1.0, 10, "cosine"), 0.05 * lr_at(6, 1.0, 10, "cosine")]
    )
    run = tmp_path / "run"
    fit(_config(shards, run, iterations=3, eval_every=2, lr_schedule="cosine"))
    payload = load_checkpoint(run / "last.pt")
    assert payload["extra"]["scheduler"]["last_epoch"] == payload["iteration"] == 3


def test_cli_errors_are_one_line(shards, tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    base = [
        "fit",
        str(shards),
        "--out",
        str(out),
        "--workers",
        "0",
        "--quiet",
        "--batch-size",
        "4",
        "--iterations",
        "1",
        "--val-rows",
        "8",
    ]
    # resume with nothing to resume
    res = runner.invoke(main, [*base, "--resume"])
    assert res.exit_code == 1 and "nothing to resume: no last.pt" in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    # a fresh run into a folder holding a run
    assert runner.invoke(main, base).exit_code == 0
    res = runner.invoke(main, base)
    assert res.exit_code == 1 and "--resume" in res.output
    # corrupt checkpoint
    (out / "last.pt").write_bytes(b"not a checkpoint")
    res = runner.invoke(main, [*base, "--resume"])
    assert res.exit_code == 1 and "not a readable checkpoint" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_resume_on_another_dataset(shards, tmp_path):
    other = make_patch_dataset(tmp_path / "other", n_train=64, n_val=16, seed=3)
    cfg = _config(shards, tmp_path / "run", iterations=1)
    fit(cfg)
    with pytest.raises(BlursynthError, match="trained on dataset .* --force"):
        fit(_config(other, tmp_path / "run", iterations=2, resume=True))
    res = CliRunner().invoke(
        main,
        [
            "fit",
            str(other),
            "--out",
            str(tmp_path / "run"),
            "--resume",
            "--iterations",
            "2",
            "--quiet",
        ],
    )
    assert res.exit_code == 1 and "--force" in res.output and "Traceback" not in res.output
    result = fit(_config(other, tmp_path / "run", iterations=2, resume=True, force=True))
    assert result.iteration == 2


def test_lr_schedules():
    assert lr_at(500, 0.1, 1000, "constant") == 0.1
    assert lr_at(0, 0.1, 1000, "cosine") == 0.1
    assert lr_at(500, 0.1, 1000, "cosine") == pytest.approx(0.05)
    assert [lr_at(i, 1.0, 100, "step") for i in (49, 50, 74, 75)] == pytest.approx(
        [1.0, 0.1, 0.1, 0.01]
    )


def test_fit_help_lists_flags():
    res = CliRunner().invoke(main, ["fit", "--help"])
    assert res.exit_code == 0
    for flag in (
        "--batch-size",
        "--lr",
        "--momentum",
        "--weight-decay",
        "--iterations",
        "--lr-schedule",
        "--seed",
        "--device",
        "--out",
        "--eval-every",
        "--val-rows",
        "--workers",
        "--data-on-device",
        "--bf16",
        "--compile",
        "--tensorboard",
        "--resume",
        "--dry-run",
        "--quiet",
    ):
        assert flag in res.output, flag


def _png_tree(root: Path, n: int = 6, size: int = 64) -> Path:
    """``image/`` + ``gt/`` PNGs: noise images whose left part is Gaussian-blurred."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    (root / "image").mkdir(parents=True)
    (root / "gt").mkdir(parents=True)
    for k in range(n):
        image = rng.uniform(0, 255, size=(size, size, 3))
        cut = int(rng.integers(size // 3, 2 * size // 3))
        image[:, :cut] = gaussian_filter(image, (2, 2, 0))[:, :cut]
        mask = np.zeros((size, size), np.uint8)
        mask[:, :cut] = 255
        Image.fromarray(image.astype(np.uint8)).save(root / "image" / f"im{k}.png")
        Image.fromarray(mask).save(root / "gt" / f"im{k}.png")
    return root


def test_dry_run_on_shards_built_by_the_patches_command(tmp_path):
    from blursynth.cli import main as data_main

    tree = _png_tree(tmp_path / "tree")
    res = CliRunner().invoke(
        data_main,
        [
            "patches",
            "--source",
            "folder",
            "--root",
            str(tree),
            "--out",
            str(tmp_path / "ds"),
            "--train-patches",
            "64",
            "--val-patches",
            "32",
            "--eval-images",
            "0",
            "--rows-per-shard",
            "40",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        main,
        [
            "fit",
            str(tmp_path / "ds"),
            "--out",
            str(tmp_path / "run"),
            "--dry-run",
            "--batch-size",
            "8",
            "--workers",
            "0",
            "--data-on-device",
            "no",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["iteration"] == 5
    # export records which images the model was trained on, after checking the dataset
    res = CliRunner().invoke(
        main,
        [
            "export",
            str(tmp_path / "run" / "last.pt"),
            "--out",
            str(tmp_path / "small.pt"),
            "--dataset",
            str(tmp_path / "ds"),
        ],
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    train = sorted(im["stem"] for im in manifest["images"] if im["split"] == "train")
    extra = load_checkpoint(tmp_path / "small.pt")["extra"]
    assert sorted(extra["train_images"].split(",")) == train and train
    other = make_patch_dataset(tmp_path / "other", n_train=16, n_val=8)
    res = CliRunner().invoke(
        main,
        [
            "export",
            str(tmp_path / "run" / "last.pt"),
            "--out",
            str(tmp_path / "x.pt"),
            "--dataset",
            str(other),
        ],
    )
    assert res.exit_code == 1 and "not trained on this dataset" in res.output


def test_tensorboard_missing_is_skipped_cleanly(shards, tmp_path):
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed")
    res = CliRunner().invoke(
        main,
        [
            "fit",
            str(shards),
            "--out",
            str(tmp_path / "run"),
            "--dry-run",
            "--batch-size",
            "4",
            "--workers",
            "0",
            "--tensorboard",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "tensorboard is not installed" in res.output


def test_plot_runs_writes_a_png(tmp_path):
    from PIL import Image

    from blursynth_train.plots import plot_runs

    rows = [{"iteration": i, "val_acc": 0.5 + i / 1000} for i in (100, 200, 300)]
    out = plot_runs({"a": rows, "b": rows[:2]}, tmp_path / "runs.png", title="t")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (640, 400)


def test_negative_seed_is_refused(shards, tmp_path):
    # the batch order's SeedSequence takes no negative entropy (numpy traceback before)
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        _config(shards, tmp_path / "run", seed=-1)
    res = CliRunner().invoke(
        main,
        [
            "fit",
            str(shards),
            "--out",
            str(tmp_path / "run"),
            "--seed",
            "-1",
            "--dry-run",
            "--quiet",
        ],
    )
    assert res.exit_code == 2 and "--seed" in res.output
    assert not (tmp_path / "run").exists()


def test_resume_with_auto_keeps_the_runs_data_path(tmp_path, monkeypatch):
    """A run that held its data in memory resumes in memory even when memory is now short:
    the streamed path draws another batch order, so switching would break the exact resume."""
    import blursynth_train.fit as fit_module

    shards = make_patch_dataset(tmp_path / "ds", n_train=24, n_val=8)
    fit(_config(shards, tmp_path / "full", iterations=6, data_on_device="auto"))
    fit(_config(shards, tmp_path / "half", iterations=3, data_on_device="auto"))
    monkeypatch.setattr(fit_module, "memory_budget", lambda device: 0)  # "auto" would stream
    fit(
        _config(
            shards, tmp_path / "half", iterations=6, resume=True, data_on_device="auto", workers=0
        )
    )
    config = json.loads((tmp_path / "half" / "config.json").read_text())
    assert config["data_on_device"] is True
    assert _same(_weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "half" / "last.pt"))


def test_adamw_and_init_from_a_checkpoint(shards, tmp_path):
    first = fit(
        _config(
            shards,
            tmp_path / "a",
            optimizer="adamw",
            lr=1e-3,
            iterations=20,
            eval_every=20,
            batch_size=8,
            val_rows=64,
        )
    )
    assert load_checkpoint(tmp_path / "a" / "last.pt")["train_config"]["optimizer"] == "adamw"
    # a run started from those weights begins where that run ended, not from scratch
    start = fit(
        _config(
            shards,
            tmp_path / "b",
            init=str(tmp_path / "a" / "last.pt"),
            lr=1e-12,
            iterations=1,
            eval_every=1,
            batch_size=8,
            val_rows=64,
        )
    )
    assert start.final_val_acc == pytest.approx(first.final_val_acc, abs=1 / 64)
    scratch = fit(
        _config(
            shards, tmp_path / "c", lr=1e-12, iterations=1, eval_every=1, batch_size=8, val_rows=64
        )
    )
    assert scratch.final_val_loss > start.final_val_loss
    res = CliRunner().invoke(
        main,
        [
            "fit",
            str(shards),
            "--out",
            str(tmp_path / "d"),
            "--init",
            str(tmp_path / "nope.pt"),
            "--quiet",
        ],
    )
    # a missing file is refused while parsing (usage error), naming it
    assert res.exit_code == 2 and "nope.pt" in res.output and "Traceback" not in res.output


def test_two_datasets_train_together(shards, tmp_path):
    other = make_patch_dataset(tmp_path / "other", n_train=96, n_val=16, seed=5)
    res = CliRunner().invoke(
        main,
        [
            "fit",
            str(shards),
            str(other),
            "--out",
            str(tmp_path / "run"),
            "--batch-size",
            "8",
            "--iterations",
            "4",
            "--eval-every",
            "2",
            "--val-rows",
            "16",
            "--workers",
            "0",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    data = config["dataset"]
    assert data["train_rows"] == 320 + 96 and data["val_rows"] == 16  # val: the first's
    assert [d["train_rows"] for d in data["datasets"]] == [320, 96]
    # resume checks the pair, in order
    res = CliRunner().invoke(
        main,
        [
            "fit",
            str(shards),
            "--out",
            str(tmp_path / "run"),
            "--resume",
            "--iterations",
            "6",
            "--quiet",
        ],
    )
    assert res.exit_code == 1 and "--force" in res.output
    res = CliRunner().invoke(
        main,
        [
            "fit",
            str(shards),
            str(other),
            "--out",
            str(tmp_path / "run"),
            "--resume",
            "--iterations",
            "6",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    # export records both datasets' training images, and refuses a wrong list
    res = CliRunner().invoke(
        main,
        [
            "export",
            str(tmp_path / "run" / "last.pt"),
            "--out",
            str(tmp_path / "w.pt"),
            "--dataset",
            str(shards),
        ],
    )
    assert res.exit_code == 1 and "not trained on this dataset" in res.output
    res = CliRunner().invoke(
        main,
        [
            "export",
            str(tmp_path / "run" / "last.pt"),
            "--out",
            str(tmp_path / "w.pt"),
            "--dataset",
            str(shards),
            "--dataset",
            str(other),
        ],
    )
    assert res.exit_code == 0, res.output


def test_val_dataset_picks_the_checkpoint_on_another_datasets_val_split(shards, tmp_path):
    """fit --val-dataset: validation reads that dataset's val split (its row count, its
    accuracy), config.json and checkpoints record it, and a resume validated elsewhere is
    refused unless --force."""
    from blursynth.shards import open_dataset
    from blursynth_train.data import eval_batches
    from blursynth_train.fit import EVAL_BATCH_SIZE
    from blursynth_train.objectives import validate

    real = make_patch_dataset(tmp_path / "real", n_train=16, n_val=24, seed=5)
    out = tmp_path / "run"
    base = ["fit", str(shards), "--out", str(out), "--batch-size", "4", "--lr", "3e-3",
            "--eval-every", "2", "--workers", "0", "--quiet"]  # fmt: skip
    res = CliRunner().invoke(main, [*base, "--iterations", "2", "--val-dataset", str(real)])
    assert res.exit_code == 0, res.output
    dataset = json.loads((out / "config.json").read_text())["dataset"]
    assert dataset["val_rows"] == 24  # real's val split, not the 96 rows of the training data's
    assert dataset["val_dataset"]["path"] == str(real)
    summary = json.loads((out / "summary.json").read_text())
    model = load_model(out / "last.pt")[0].eval()
    with open_dataset(real) as ds:
        v = validate(model, eval_batches(ds["val"], EVAL_BATCH_SIZE, torch.device("cpu"), 24))
    assert v.accuracy == pytest.approx(summary["final_val_acc"], abs=1e-6)
    assert v.miou == pytest.approx(summary["final_val_miou"], abs=1e-6)
    assert load_checkpoint(out / "last.pt")["extra"]["val_manifest_sha256"]

    more = [*base, "--iterations", "4", "--resume"]
    res = CliRunner().invoke(main, [*more, "--val-dataset", str(shards)])
    assert res.exit_code == 1 and "validated on dataset" in res.output and "--force" in res.output
    res = CliRunner().invoke(main, more)  # the run's own validation dataset, from last.pt
    assert res.exit_code == 0, res.output
    assert json.loads((out / "summary.json").read_text())["iteration"] == 4


class _FixedLogits(torch.nn.Module):
    """A 'model' that returns the logits it is given as its input (for validate())."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x


def test_validate_pools_class_iou_over_all_pixels():
    from blursynth_train.objectives import IGNORE, validate

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (4, 9, 7))
    labels[0, :2] = IGNORE
    predicted = np.where(rng.random(labels.shape) < 0.7, labels, rng.integers(0, 3, labels.shape))
    predicted[labels == IGNORE] = 0
    logits = torch.nn.functional.one_hot(torch.from_numpy(predicted), 3).permute(0, 3, 1, 2)
    batches = [
        (logits[:3].float(), torch.from_numpy(labels[:3])),
        (logits[3:].float(), torch.from_numpy(labels[3:])),
    ]
    v = validate(_FixedLogits(), batches)
    valid = labels != IGNORE
    ious = [
        ((labels == c) & (predicted == c) & valid).sum()
        / (((labels == c) | (predicted == c)) & valid).sum()
        for c in range(3)
    ]
    assert v.miou == pytest.approx(np.mean(ious), abs=1e-12)
    assert v.accuracy == pytest.approx((labels == predicted)[valid].mean(), abs=1e-12)
    # a class in neither labels nor predictions does not count (4 logits, classes 0-2 used)
    four = torch.cat([logits.float(), torch.full((4, 1, 9, 7), -1.0)], 1)
    v4 = validate(_FixedLogits(), [(four, torch.from_numpy(labels))])
    assert v4.miou == pytest.approx(v.miou, abs=1e-12)


@pytest.mark.parametrize("select_by, best", [("miou", 4), ("accuracy", 2)])
def test_select_by_picks_best_pt_by_that_number(shards, tmp_path, monkeypatch, select_by, best):
    import blursynth_train.fit as fit_module
    from blursynth_train.plots import read_log

    # scripted validations where the two numbers disagree: accuracy peaks at 2, mIoU at 4
    script = iter([(0.9, 0.3), (0.5, 0.7), (0.8, 0.5), (0.6, 0.6)])
    real = fit_module.validate  # the name the loop calls

    def scripted(*a, **k):
        measured = real(*a, **k)
        assert 0 <= measured.miou <= 1 and 0 <= measured.accuracy <= 1
        acc, miou = next(script)
        return fit_module.Validation(measured.loss, acc, miou)

    monkeypatch.setattr(fit_module, "validate", scripted)
    out = tmp_path / "run"
    args = ["fit", str(shards), "--out", str(out), "--batch-size", "16", "--iterations", "8"]
    args += ["--eval-every", "2", "--val-rows", "64", "--workers", "0", "--select-by", select_by]
    res = CliRunner().invoke(main, [*args, "-q"])
    assert res.exit_code == 0, res.output
    assert [r["val_miou"] for r in read_log(out / "log.csv")] == [0.3, 0.7, 0.5, 0.6]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["select_by"] == select_by and summary["best_iteration"] == best
    assert load_checkpoint(out / "best.pt")["iteration"] == best
    assert json.loads((out / "config.json").read_text())["fit"]["select_by"] == select_by


def test_a_checkpoint_from_before_select_by_keeps_choosing_by_accuracy():
    from blursynth_train.fit import TrainState

    legacy = {"iteration": 40, "extra": {"state": {"best_val_acc": 0.8, "best_iteration": 20}}}
    state = TrainState.from_checkpoint(legacy)
    assert state.best_score == 0.8 and state.best_iteration == 20


def test_log_rows_of_an_older_run_keep_an_empty_mean_iou(tmp_path):
    from blursynth_train.plots import read_log
    from blursynth_train.runlog import write_logs as _write_logs

    old = {"iteration": 2, "train_loss": 0.7, "train_acc": 0.5, "val_loss": 0.69}
    old |= {"val_acc": 0.55, "lr": 0.01, "samples_per_s": 100.0, "elapsed_s": 1.0}
    new = {**old, "iteration": 4, "val_miou": 0.4}
    _write_logs(tmp_path, [old, new], None, title="t")
    rows = read_log(tmp_path / "log.csv")
    assert rows[0]["val_miou"] is None and rows[1]["val_miou"] == pytest.approx(0.4)
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_soft_dice_loss_counts_labelled_pixels_only():
    from blursynth_train.objectives import IGNORE, soft_dice_loss

    labels = torch.tensor([[[0, 1, 1], [2, 2, IGNORE]]])
    perfect = torch.nn.functional.one_hot(labels.clamp(max=2), 3).movedim(-1, 1).float() * 50
    assert float(soft_dice_loss(perfect, labels)) == pytest.approx(0.0, abs=1e-6)
    # whatever the model says at an unlabelled pixel changes nothing
    other = perfect.clone()
    other[0, :, 1, 2] = torch.tensor([0.0, 50.0, 0.0])
    assert float(soft_dice_loss(other, labels)) == pytest.approx(0.0, abs=1e-6)
    # uniform probabilities: class c has g_c labelled pixels of 5, p = 1/3 at each
    uniform = torch.zeros(1, 3, 2, 3)
    g = torch.tensor([1.0, 2.0, 2.0])
    expected = 1 - ((2 * g / 3 + 1) / (5 / 3 + g + 1)).mean()
    assert float(soft_dice_loss(uniform, labels)) == pytest.approx(float(expected), rel=1e-6)
    # patch labels (N,) and logits (N, C) work too
    assert float(soft_dice_loss(torch.tensor([[9.0, -9.0]]), torch.tensor([0]))) < 1e-3


def test_training_loss_is_weighted_cross_entropy_plus_dice():
    from blursynth_train.objectives import IGNORE, soft_dice_loss, training_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, 4)
    labels = torch.randint(0, 3, (2, 5, 4))
    labels[0, 0] = IGNORE
    w = torch.tensor([1.0, 3.0, 0.5])
    ce = torch.nn.functional.cross_entropy(logits, labels, weight=w, ignore_index=IGNORE)
    assert torch.allclose(training_loss(logits, labels, "ce", w), ce)
    both = training_loss(logits, labels, "ce+dice", w)
    assert torch.allclose(both, ce + soft_dice_loss(logits, labels))
    assert not torch.allclose(training_loss(logits, labels), ce)  # weights do matter


def test_cli_loss_and_class_weights_are_recorded_checked_and_kept_on_resume(shards, tmp_path):
    out = tmp_path / "run"
    base = ["fit", str(shards), "--out", str(out), "--batch-size", "16", "--eval-every", "2"]
    base += ["--val-rows", "32", "--workers", "0", "-q"]
    res = CliRunner().invoke(main, [*base, "--iterations", "2", "--class-weights", "1,2,1"])
    assert res.exit_code == 1 and "3 weights, the model has 2 classes" in res.output
    assert str(shards) in res.output
    res = CliRunner().invoke(main, [*base, "--iterations", "2", "--class-weights", "1,x"])
    assert res.exit_code == 2 and "positive numbers" in res.output
    assert not (out / "config.json").exists()  # refused before anything was written
    given = ["--iterations", "2", "--loss", "ce+dice", "--class-weights", "1,2.5"]
    res = CliRunner().invoke(main, [*base, *given])
    assert res.exit_code == 0, res.output
    fit_config = json.loads((out / "config.json").read_text())["fit"]
    assert fit_config["loss"] == "ce+dice" and fit_config["class_weights"] == [1.0, 2.5]
    res = CliRunner().invoke(main, [*base, "--iterations", "4", "--resume"])
    assert res.exit_code == 0, res.output
    saved = load_checkpoint(out / "last.pt")["train_config"]
    assert saved["loss"] == "ce+dice" and tuple(saved["class_weights"]) == (1.0, 2.5)
    assert saved["iterations"] == 4


def test_weight_average_follows_the_decay_with_its_warm_up():
    from blursynth_train.models import UNet, UNetConfig
    from blursynth_train.runstate import ema_decay
    from blursynth_train.runstate import weight_average as _weight_average

    assert ema_decay(0.999, 0) == pytest.approx(0.1) and ema_decay(0.999, 10**6) == 0.999
    model = UNet(UNetConfig(width=4, depth=1))
    ema = _weight_average(model, 0.75)
    expected = {k: v.clone() for k, v in model.named_parameters()}
    ema.update_parameters(model)  # the first update copies
    for n in range(1, 40):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        ema.update_parameters(model)
        d = min(0.75, (1 + n) / (10 + n))
        current = dict(model.named_parameters())
        expected = {k: d * v + (1 - d) * current[k].detach() for k, v in expected.items()}
    assert ema_decay(0.75, 39) == 0.75  # the warm-up is over by then
    for name, p in ema.module.named_parameters():
        assert torch.allclose(p, expected[name], atol=1e-5), name
    # BatchNorm statistics are averaged too
    assert any("running_mean" in k for k, _ in ema.module.named_buffers())


def test_ema_run_ships_the_average_and_resumes_exactly(shards, tmp_path):
    from blursynth.shards import open_dataset
    from blursynth_train.data import eval_batches
    from blursynth_train.fit import EVAL_BATCH_SIZE
    from blursynth_train.objectives import validate

    kw = dict(batch_size=16, eval_every=3, val_rows=32, workers=0, ema=0.9, augment=True)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(_config(shards, tmp_path / "full", iterations=6, **kw))
        fit(_config(shards, tmp_path / "half", iterations=3, **kw))
        fit(_config(shards, tmp_path / "half", iterations=6, resume=True, **kw))
    finally:
        torch.set_num_threads(n)
    a, b = (load_checkpoint(tmp_path / r / "last.pt") for r in ("full", "half"))
    for key in ("model_state", "train_model_state"):
        sa = a[key] if key == "model_state" else a["extra"][key]
        sb = b[key] if key == "model_state" else b["extra"][key]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), key
    assert a["extra"]["ema_n_averaged"] == 6
    trained = a["extra"]["train_model_state"]
    assert any(not torch.equal(a["model_state"][k], trained[k]) for k in trained)
    # what was validated, and what the checkpoint ships as the model, is the average
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    model = load_model(tmp_path / "full" / "last.pt")[0].eval()
    with open_dataset(shards) as ds:
        v = validate(model, eval_batches(ds["val"], EVAL_BATCH_SIZE, torch.device("cpu"), 32))
    assert v.loss == pytest.approx(summary["final_val_loss"], rel=1e-6)
    assert v.accuracy == pytest.approx(summary["final_val_acc"], abs=1e-9)
