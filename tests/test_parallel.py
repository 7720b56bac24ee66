"""Backends: the same command on local processes and on a dask.distributed cluster gives the
same bytes (a real cluster on the loopback address, started and stopped here)."""

from __future__ import annotations

import pytest
from _trees import make_tree
from click.testing import CliRunner

from blursynth import parallel
from blursynth.cli import main
from blursynth.errors import BlursynthError
from blursynth.parallel import Backend, use_backend


def test_backend_arguments_are_checked():
    assert Backend() == Backend("local", None)
    with pytest.raises(BlursynthError, match="needs --scheduler"):
        Backend("dask")
    with pytest.raises(BlursynthError, match="is for --backend dask"):
        Backend("local", "tcp://127.0.0.1:8786")
    with pytest.raises(BlursynthError, match="backend must be one of"):
        Backend("ray", "x")


def test_cli_refuses_a_scheduler_without_the_dask_backend(tmp_path):
    root = make_tree(tmp_path / "src", motion=2, defocus=2, size=(40, 40))
    res = CliRunner().invoke(
        main,
        ["patches", "--source", "shi", "--root", str(root), "--out", str(tmp_path / "o")]
        + ["--scheduler", "tcp://127.0.0.1:8786"],
    )
    assert res.exit_code == 2 and "is for --backend dask" in res.output
    assert not (tmp_path / "o").exists()


def test_an_unreachable_scheduler_is_one_line(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT_S", 1)
    root = make_tree(tmp_path / "src", motion=2, defocus=2, size=(40, 40))
    res = CliRunner().invoke(
        main,
        ["patches", "--source", "shi", "--root", str(root), "--out", str(tmp_path / "o")]
        + ["--backend", "dask", "--scheduler", "tcp://127.0.0.1:9"],
    )
    assert res.exit_code == 1, res.output
    assert "cannot reach a dask scheduler at tcp://127.0.0.1:9" in res.output
    assert "Traceback" not in res.output


class _BlindClient:
    """A client whose one worker does not see the caller's folders."""

    def run(self, fn, *args):
        return {"tcp://10.9.9.9:4000": False, "tcp://127.0.0.1:4001": fn(*args)}


def test_workers_that_do_not_see_the_output_or_source_folder_are_refused(tmp_path):
    with pytest.raises(BlursynthError, match=r"1 dask worker\(s\) \(first: tcp://10.9.9.9:4000"):
        parallel._check_shared_folder(_BlindClient(), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # the marker is gone
    (tmp_path / "src").mkdir()  # here, not on the blind worker
    with pytest.raises(BlursynthError, match=r"src: 1 dask worker\(s\) .* do not see"):
        parallel._check_visible(_BlindClient(), tmp_path / "src")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes and a scheduler on 127.0.0.1, stopped after the module."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        silence_logs=50,
    ) as lc:
        yield lc.scheduler_address


def _sums(folder) -> str:
    return (folder / "SHA256SUMS").read_text()


def _run(args):
    res = CliRunner().invoke(main, [*args, "--quiet"])
    assert res.exit_code == 0, res.output
    return res


@pytest.mark.parametrize("command", ["patches", "tiles"])
def test_a_dask_cluster_writes_the_same_bytes_as_local_workers(cluster, tmp_path, command):
    root = make_tree(tmp_path / "src", motion=5, defocus=5, size=(60, 80))
    common = [command, "--source", "shi", "--root", str(root), "--eval-images", "2"]
    if command == "patches":
        common += ["--train-patches", "3000", "--rows-per-shard", "700"]
    else:
        common += ["--tile-size", "32", "--rows-per-shard", "9"]
    _run([*common, "--out", str(tmp_path / "local"), "--jobs", "2"])
    _run([*common, "--out", str(tmp_path / "dask"), "--backend", "dask", "--scheduler", cluster])
    assert _sums(tmp_path / "dask") == _sums(tmp_path / "local")
    leftovers = [".decoded", ".segments-*", ".cluster-check-*", "*.tmp-*"]
    assert not [p for pat in leftovers for p in (tmp_path / "dask").glob(pat)]


def test_generate_on_a_dask_cluster_matches_a_local_run(cluster, tmp_path):
    _run(["generate", "--n", "3", "--out", str(tmp_path / "local"), "-j", "2"])
    _run(
        ["generate", "--n", "3", "--out", str(tmp_path / "dask")]
        + ["--backend", "dask", "--scheduler", cluster]
    )
    for sub in ("image", "gt", "soft"):
        local = sorted((tmp_path / "local" / sub).iterdir())
        remote = sorted((tmp_path / "dask" / sub).iterdir())
        assert [p.name for p in local] == [p.name for p in remote] and len(local) == 6
        assert all(a.read_bytes() == b.read_bytes() for a, b in zip(local, remote, strict=True))
    assert (tmp_path / "dask" / "records.jsonl").read_text() == (
        tmp_path / "local" / "records.jsonl"
    ).read_text()


def test_use_backend_local_is_a_no_op(tmp_path):
    with use_backend(None, tmp_path / "x"):
        pass
    with use_backend(Backend(), tmp_path / "x"):
        pass
    assert not (tmp_path / "x").exists()
