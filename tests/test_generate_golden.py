"""Every byte ``generate`` writes, pinned: the digests of every file of a few small runs on the
embedded sample (every blur model, every camera option), recorded in
``tests/data/generate-digests.json`` from the code before the blur models became a registry
(issue 23). A change that moves one pixel or one record field fails here.

Regenerate (only when a change of output is intended, and say so in the commit)::

    python tests/test_generate_golden.py --write
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

DIGESTS = Path(__file__).parent / "data" / "generate-digests.json"
RUNS = {
    "default": ["--model", "all", "--n", "4"],
    "camera": [
        "--model", "all", "--n", "4", "--seed", "3", "--motion-kernel", "shake",
        "--defocus-kernel", "disk", "--linear-light", "--noise", "--uniform-share", "0.3",
        "--jpeg", "90",
    ],
    "own-background": [
        "--model", "all", "--n", "3", "--seed", "5", "--background", "own",
        "--min-background-sharpness", "0.001", "--sharp-background-for", "sharp-truth",
        "--motion-length", "7", "21",
        "--defocus-sigma", "1.5", "3",
    ],
}  # fmt: skip
SKIP = {"report.json", ".lock"}  # report.json holds no pixel; .lock is the run's lock


def run_digests(name: str, out: Path) -> dict[str, str]:
    from blursynth.cli import main as data_cli

    res = CliRunner().invoke(data_cli, ["generate", "--out", str(out), "-q", *RUNS[name]])
    assert res.exit_code == 0, res.output
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name not in SKIP
    }


@pytest.mark.parametrize("name", sorted(RUNS))
def test_generate_writes_the_recorded_bytes(tmp_path, name):
    expected = json.loads(DIGESTS.read_text())[name]
    got = run_digests(name, tmp_path / name)
    assert sorted(got) == sorted(expected)
    changed = sorted(f for f in got if got[f] != expected[f])
    assert not changed, f"{len(changed)} file(s) changed, e.g. {changed[:5]}"


LEGACY_RUN = Path(__file__).parent / "data" / "generate-legacy-run.json"
"""An interrupted ``camera`` run written before the blur-model registry: its ``run.json``,
``sources.json`` and four sample records, verbatim (tests/data/README)."""
LEGACY_DIGESTS = Path(__file__).parent / "data" / "generate-legacy-run.sha256.json"
"""What resuming it writes: the ``camera`` digests of that time, four models (never
rewritten by ``--write``: models added later do not join the run)."""


def legacy_run(out: Path) -> None:
    """Lay the interrupted run out in ``out``: its files as that code wrote them, the PNGs of
    one sample (``defocus0003``, so that it is complete) and a killed writer's temporary."""
    from blursynth.generate import default_voc_root, rerender
    from blursynth.imageio import write_png
    from blursynth.sampling import SampleRecord
    from blursynth.sources.voc import VOCSegmentation

    for name, text in json.loads(LEGACY_RUN.read_text())["files"].items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    record = SampleRecord.from_dict(json.loads((out / "records" / "defocus0003.json").read_text()))
    for sub, array in rerender(record, VOCSegmentation(default_voc_root())).items():
        write_png(out / sub / f"{record.name}.png", array, level=1)  # the run's png_level
    (out / "image" / "motion0002.png.tmp-4242").write_bytes(b"half")


def test_a_run_interrupted_before_the_registry_resumes_to_the_same_bytes(tmp_path):
    from blursynth.cli import main as data_cli

    out = tmp_path / "camera"
    legacy_run(out)
    kept = (out / "image" / "defocus0003.png").stat().st_mtime_ns
    args = ["generate", "--out", str(out), "--resume", "-q", *RUNS["camera"]]
    res = CliRunner().invoke(data_cli, args)
    assert res.exit_code == 0, res.output
    assert (out / "image" / "defocus0003.png").stat().st_mtime_ns == kept  # complete: kept
    assert not list(out.rglob("*.tmp-*"))
    expected = json.loads(LEGACY_DIGESTS.read_text())
    got = {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name not in SKIP
    }
    # run.json now names the encoding the run had without naming it (issue 24's options)
    legacy = json.loads(json.loads(LEGACY_RUN.read_text())["files"]["run.json"])
    named = {**legacy, "png_strategy": "default", "png_filter": "adaptive"}
    assert json.loads((out / "run.json").read_text()) == named
    assert got.pop("run.json") != expected.pop("run.json")
    assert got == expected


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        digests = {name: run_digests(name, Path(tmp) / name) for name in sorted(RUNS)}
    DIGESTS.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    print(f"{DIGESTS}: {sum(map(len, digests.values()))} files")
