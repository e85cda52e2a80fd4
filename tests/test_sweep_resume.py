"""A grid sweep resumes as a whole: Ctrl-C mid-way writes the report at once, listing the jobs
that never started; the same `-m` command again keeps the finished jobs byte for byte, resumes the
interrupted one from its own last.ckpt, runs the rest, and ends as an uninterrupted sweep."""

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from hydra_plugins.litlab_sweepers.sweepers import report_now
from litlab.files.run_record import RunRecord
from litlab.sweeps.plan import unfinished_runs
from tests.helpers.config import LIGHT, QUICK, ROOT, SHRINK
from tests.helpers.outputs import job_metrics

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop

GRID = ["model=mlp", "model.hidden_sizes=[16],[32]", "seed=1,2", "trainer.max_epochs=12",
        "callbacks.early_stopping.patience=100"]  # fmt: skip


def command(sweep_dir: Path) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), "-m", *GRID, *SHRINK, f"hydra.sweep.dir={sweep_dir}"]


def sweep(sweep_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command(sweep_dir), cwd=ROOT, capture_output=True, text=True, timeout=300)


def interrupted_sweep(sweep_dir: Path) -> subprocess.CompletedProcess:
    """The sweep, stopped by SIGINT once job 1 has written its first last.ckpt."""
    proc = subprocess.Popen(command(sweep_dir), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (sweep_dir / "1" / "checkpoints" / "last.ckpt").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "job 1 never wrote a checkpoint"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def digests(folder: Path) -> dict[str, str]:
    paths = [p for p in folder.rglob("*") if p.is_file()]
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def files_as_written(folder: Path) -> dict[str, tuple[int, int, str]]:
    """digests, with each file's inode and mtime: a file written again (whole: a new inode) or appended to shows."""

    def stamped(name: str, digest: str) -> tuple[int, int, str]:
        stat = (folder / name).stat()
        return stat.st_ino, stat.st_mtime_ns, digest

    return {name: stamped(name, digest) for name, digest in digests(folder).items()}


def finals(sweep_dir: Path) -> dict[str, dict]:
    return {job: {**m["val"], **m["test"]} for job, m in job_metrics(sweep_dir).items()}


@pytest.mark.slow  # three sweep processes, ~40 s of the fast suite's budget
def test_an_interrupted_grid_resumes_as_a_whole_and_ends_as_an_uninterrupted_one(tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert sweep(whole).returncode == 0

    stopped = interrupted_sweep(resumed)
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    report = pd.read_csv(resumed / "report.csv", dtype={"job": str}).set_index("job")
    assert report.loc["0", "status"] == "completed" and report.loc["1", "status"] == "interrupted"
    assert list(report.loc[["2", "3"], "status"]) == ["not started", "not started"]
    assert "model.hidden_sizes=[32]" in (resumed / "report.md").read_text()  # the never-started jobs' overrides
    kept = digests(resumed / "0")

    again = sweep(resumed)
    assert again.returncode == 0, again.stderr[-3000:]
    assert digests(resumed / "0") == kept  # the finished job untouched
    before = json.loads((resumed / "1" / "metrics_before_rerun_1.json").read_text())
    assert before["status"] == "interrupted"
    assert job_metrics(resumed)["1"]["resumed_from"] == str(resumed / "1" / "checkpoints" / "last.ckpt")
    assert pd.read_csv(resumed / "report.csv").status.eq("completed").sum() == 4
    expected, got = finals(whole), finals(resumed)
    assert set(got) == set(expected) == {"0", "1", "2", "3"}
    for job in expected:
        assert got[job] == pytest.approx(expected[job], rel=1e-4, abs=1e-5), job


def test_jobs_to_run_again_are_launched_in_runs_of_consecutive_numbers():
    batch = [["a=1"], ["a=2"], ["a=3"], ["a=4"], ["a=5"]]
    done = {4, 6}  # job numbers, counted from 3
    runs = unfinished_runs(batch, 3, lambda num, _: num in done)
    assert runs == [(3, [["a=1"]]), (5, [["a=3"]]), (7, [["a=5"]])]
    assert unfinished_runs(batch, 0, lambda num, _: False) == [(0, batch)]


def test_the_same_sweep_again_runs_none_of_its_finished_jobs_and_another_grid_is_refused(tmp_path, cli):
    sweep_dir = tmp_path / "sweep"
    args = (*QUICK, *LIGHT, f"hydra.sweep.dir={sweep_dir}")
    code, _, err = cli("train.py", "-m", "optimizer.lr=0.01", *args)
    assert code == 0, err[-3000:]
    finished = files_as_written(sweep_dir / "0")
    assert "metrics.json" in finished and "checkpoints/last.ckpt" in finished
    assert OmegaConf.load(sweep_dir / "multirun.yaml").hydra.sweep.dir == str(sweep_dir)  # the sweep's config

    code, out, err = cli("train.py", "-m", "optimizer.lr=0.01", *args)
    assert code == 0, err[-3000:]
    # Not run again: none of its files rewritten (a new inode), appended to (train.log) or added.
    assert files_as_written(sweep_dir / "0") == finished, "the finished job was run again"
    assert "job 0 [optimizer.lr=0.01 " in out + err and "finished in an earlier run of this sweep: kept" in out + err

    kept = digests(sweep_dir)
    code, _, err = cli("train.py", "-m", "optimizer.lr=0.05", *args)
    assert code == 2 and "holds a sweep of other jobs" in err and "optimizer.lr=0.01" in err
    assert digests(sweep_dir) == kept  # multirun.yaml and the plan included


def test_an_interrupted_sweep_shows_and_writes_its_report_and_one_that_cannot_be_written_is_only_logged(
    tmp_path, capsys, caplog
):
    RunRecord("completed", overrides=["lr=0.1"], test={"test/acc": 0.9}).write(tmp_path / "0")
    report_now(tmp_path)
    assert "lr=0.1" in (tmp_path / "report.md").read_text().replace(" ", "") and "0.9" in capsys.readouterr().out
    report_now(tmp_path / "nothing")  # no sweep there: the interrupt still ends the sweep, with a log line
    assert "the sweep report could not be written" in caplog.text


@pytest.mark.slow
def test_a_failed_job_runs_again_in_its_own_dir_keeping_each_attempt_s_record(tmp_path, cli):
    sweep_dir = tmp_path / "sweep"
    for _ in range(3):  # the model refuses lr -1: the job fails each time, and each time it runs again
        code, _, err = cli("train.py", "-m", "optimizer.lr=-1", *QUICK, *LIGHT, f"hydra.sweep.dir={sweep_dir}")
        assert code == 1, err[-3000:]
    job = sweep_dir / "0"
    kept = sorted(p.name for p in job.glob("metrics_before_rerun_*.json"))
    assert kept == ["metrics_before_rerun_1.json", "metrics_before_rerun_2.json"]
    assert [json.loads((job / name).read_text())["status"] for name in kept] == ["failed", "failed"]
    assert json.loads((job / "metrics.json").read_text())["status"] == "failed"
