"""Many workers on one Optuna study: the same search command started several times, as users start
it on one machine, in a SLURM job array (tests/test_slurm.py) or on several machines. Each worker is
a real `python train.py -m` process; all are slow (each imports Lightning and trains)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.storages import JournalStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend

from litlab.sweeps.lock import LOCK
from litlab.sweeps.report import SweepReport
from tests.helpers.config import QUICK, ROOT
from tests.helpers.processes import started

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SEARCH = ["-m", "hparams_search=digits_mlp", *(o for o in QUICK if not o.startswith("trainer.max_epochs=")),
          "logger=none", "hydra.sweeper.pruner=none", "optimizer.lr=interval(0.01, 0.05)"]  # fmt: skip


def worker(sweep: Path, *args: str, epochs: str = "range(1, 5)") -> list[str]:
    """The search command; trials of uneven length (`epochs`, searched: 1 to 4 by default)."""
    return [sys.executable, str(ROOT / "train.py"), *SEARCH, f"trainer.max_epochs={epochs}", f"hydra.sweep.dir={sweep}",
            *args]  # fmt: skip


def job_of(pid: int, sweep: Path) -> int | None:
    """The job dir (= trial number) worker `pid` is running a trial in: the one whose train.log it
    has open (the basic launcher runs the job in the worker's own process)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = Path(os.readlink(fd))
        except OSError:  # closed meanwhile
            continue
        if target.parent.parent == sweep and target.parent.name.isdigit() and target.name == "train.log":
            return int(target.parent.name)
    return None


def test_three_workers_on_one_study_finish_the_trials_asked_for_with_none_failed(tmp_path):
    """Three processes of one command, one sweep dir (its SQLite study): 6 trials finished over all
    three, at most 2 more that the others had started by then; job dirs are the trial numbers;
    best.yaml and the report hold every trial, whichever worker ended last."""
    sweep, log = tmp_path / "study", tmp_path / "workers.log"
    with open(log, "w") as out, started(*[worker(sweep, "hydra.sweeper.n_trials=6")] * 3, cwd=ROOT, stdout=out,
                                        stderr=subprocess.STDOUT) as procs:  # fmt: skip
        for proc in procs:
            proc.wait(timeout=420)
    assert [proc.returncode for proc in procs] == [0, 0, 0], log.read_text()[-3000:]
    study = optuna.load_study(study_name="digits_mlp", storage=f"sqlite:///{sweep}/optuna.db")
    states = [t.state.name for t in study.trials]
    assert set(states) == {"COMPLETE"} and 6 <= len(states) <= 8, states
    assert sorted(int(p.name) for p in sweep.iterdir() if p.name.isdigit()) == list(range(len(states)))
    best = OmegaConf.load(sweep / "best.yaml")
    assert best.trials.total == best.trials.complete == len(states)
    assert best.value == max(t.value for t in study.trials)
    report = SweepReport.load(sweep)
    assert len(report.jobs) == len(states) and set(report.jobs.status) == {"completed"}
    assert not (sweep / LOCK).exists()  # the last worker to end removed it


def test_two_workers_on_one_journal_file_each_in_its_own_sweep_dir_complete_the_search(tmp_path):
    """The second worker starts while the first one's trial runs: it must not touch that live
    trial (no heartbeat in a journal file: a RUNNING trial is never taken for a dead one)."""
    journal, sweeps = tmp_path / "journal.log", [tmp_path / "a", tmp_path / "b"]
    shared = [f"hydra.sweeper.storage=journal:{journal}", "hydra.sweeper.study_name=shared", "hydra.sweeper.n_trials=4",
              "~callbacks.early_stopping"]  # fmt: skip
    commands = [worker(sweep, *shared, epochs="range(15, 25)") for sweep in sweeps]  # trials longer than a start
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    with (
        open(logs[0], "w") as first_log,
        open(logs[1], "w") as second_log,
        started(commands[0], cwd=ROOT, stdout=first_log, stderr=subprocess.STDOUT) as (first,),
    ):
        deadline = time.monotonic() + 180
        while job_of(first.pid, sweeps[0]) is None:  # trial 0 is under way
            assert first.poll() is None and time.monotonic() < deadline, logs[0].read_text()[-3000:]
            time.sleep(0.1)
        second = subprocess.run(commands[1], cwd=ROOT, stdout=second_log, stderr=subprocess.STDOUT, timeout=420)
        first.wait(timeout=420)
    assert first.returncode == 0, logs[0].read_text()[-3000:]
    assert second.returncode == 0, logs[1].read_text()[-3000:]
    study = optuna.load_study(study_name="shared", storage=JournalStorage(JournalFileBackend(str(journal))))
    states = [t.state.name for t in study.trials]
    assert set(states) == {"COMPLETE"} and 4 <= len(states) <= 5, states
    ran = [{int(p.name) for p in s.iterdir() if p.name.isdigit()} for s in sweeps]
    assert ran[0] and ran[1] and not ran[0] & ran[1]  # both worked, each trial in one worker's dir only
    assert ran[0] | ran[1] == set(range(len(states)))
    # the report of either worker's dir lists every trial, each with its own job dir's record
    for sweep in sweeps:
        report = SweepReport.load(sweep)
        assert sorted(report.jobs.job.astype(int)) == list(range(len(states))), report.jobs
        assert set(report.jobs.status) == {"completed"} and report.jobs["test/acc"].notna().all()


def test_a_killed_worker_s_trial_is_run_again_by_a_live_worker(tmp_path):
    """kill -9 of one of two workers mid-trial: its trial's heartbeat stops; the live worker fails it
    after the grace period and runs it again with the same values; the search completes and nothing
    else fails."""
    sweep = tmp_path / "study"
    # 8 trials of 15-24 epochs (about 0.5-1 s each here): the live worker still asks for trials well
    # after the killed one's grace period has passed, and so finds it stale
    cmd = worker(sweep, "hydra.sweeper.n_trials=8", "hydra.sweeper.heartbeat_interval=1",
                 "hydra.sweeper.grace_period=2", epochs="range(15, 25)")  # fmt: skip
    log = tmp_path / "workers.log"
    with open(log, "w") as out, started(cmd, cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT) as (doomed, live):
        deadline = time.monotonic() + 240
        while (killed := job_of(doomed.pid, sweep)) is None or job_of(live.pid, sweep) is None:  # both mid-trial
            assert doomed.poll() is None and live.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the two workers never ran trials at once"
            time.sleep(0.05)
        doomed.kill()
        doomed.wait(timeout=30)
        live.wait(timeout=420)
    assert live.returncode == 0, log.read_text()[-3000:]
    study = optuna.load_study(study_name="digits_mlp", storage=f"sqlite:///{sweep}/optuna.db")
    states = [t.state.name for t in study.trials]
    assert states.count("FAIL") == 1 and states[killed] == "FAIL" and states.count("COMPLETE") >= 8, states
    retried = [t for t in study.trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == killed]
    assert len(retried) == 1 and retried[0].state.name == "COMPLETE"
    assert retried[0].params == study.trials[killed].params
