"""A full disk: files are written whole (litlab.files), the run stops with one line, its record
says `failed`, and the checkpoints it kept still load; a disk full before the run starts is one
line before Hydra writes anything."""

import errno
import json
import subprocess
import sys

import pytest

from litlab.checkpoints import store
from litlab.files import DiskFull, append_line, is_disk_full, write_text
from tests.helpers.config import ROOT, SHRINK
from tests.helpers.disks import fill, tmpfs
from tests.helpers.doors import assert_refused


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs at tmp_path/disk, unmounted afterwards."""
    with tmpfs(tmp_path / "disk") as disk:
        yield disk


@pytest.mark.e2e
@pytest.mark.slow  # a new training process on a tmpfs: ~9 s
def test_a_full_disk_is_one_line_and_leaves_whole_files(small_disk):
    # A 96k-parameter MLP: each checkpoint is about 1.2 MB, so the second epoch's best one no longer fits.
    run_dir = small_disk / "run"
    proc = subprocess.run(
        [sys.executable, "train.py", *SHRINK, "model=mlp", "model.hidden_sizes=[1280]", "trainer.max_epochs=5",
         "callbacks.early_stopping.patience=10", f"hydra.run.dir={run_dir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith("Error: no space left on device writing ") and "paths.log_dir=" in last_line
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "failed" and record["error"].startswith("DiskFull")
    checkpoints = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    assert [p.name for p in checkpoints] == ["epoch_000.ckpt", "last.ckpt"]
    for path in checkpoints:  # whole: each loads, and last.ckpt is the end of the epoch that fit
        assert store.load(path)["epoch"] == 0
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]  # no temporary left behind


def test_a_file_written_on_a_full_disk_keeps_its_old_content(small_disk):
    path = small_disk / "metrics.json"
    write_text(path, '{"status": "completed"}')
    fill(small_disk, leave=0)
    with pytest.raises(DiskFull, match=f"writing {path}"):
        write_text(path, "x" * 100_000)
    assert path.read_text() == '{"status": "completed"}'


def test_a_line_that_does_not_fit_is_not_appended(small_disk):
    path = small_disk / "sweep.log"
    append_line(path, "job 0 completed")
    fill(small_disk, leave=16384)  # room for part of the line
    with pytest.raises(DiskFull):
        append_line(path, "job 1 completed " + "x" * 100_000)
    assert path.read_text() == "job 0 completed\n"


def test_a_full_disk_is_found_behind_what_was_raised_and_a_looping_chain_ends():
    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError:
            raise RuntimeError("unexpected pos 733056 vs 732944")  # noqa: B904 - torch.save's way
    except RuntimeError as e:
        assert is_disk_full(e)
    looping = ValueError("a")
    looping.__context__ = KeyError("b")
    looping.__context__.__context__ = looping
    assert not is_disk_full(looping)


@pytest.mark.parametrize("multirun", [False, True], ids=["run", "sweep"])
def test_a_disk_full_before_the_run_is_one_line_and_leaves_nothing(small_disk, cli, multirun):
    fill(small_disk, leave=0)
    where = ["-m", "seed=1,2", f"hydra.sweep.dir={small_disk / 'sweep'}"] if multirun else [
        f"hydra.run.dir={small_disk / 'run'}"]  # fmt: skip
    code, out, err = cli("train.py", *where, *SHRINK)
    assert_refused(code, out, err, f"no space left on device writing {small_disk / ('sweep' if multirun else 'run')}")
    assert "paths.log_dir=" in err
    assert [p.name for p in small_disk.iterdir()] == ["filler"]  # no empty .hydra/*.yaml, train.log or dir
