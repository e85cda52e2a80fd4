"""Multiruns as users start them: failed jobs, k-fold groups, the report, TensorBoard names, Optuna."""

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from optuna.storages import RetryHeartbeatStaleTrialCallback

from hydra_plugins.litlab_sweepers.optuna_sweeper import OptunaSweeper, check_job_dirs
from hydra_plugins.litlab_sweepers.search_space import as_text
from litlab.errors import UserError
from litlab.sweeps.plots import read_curve
from litlab.sweeps.report import SweepReport
from litlab.sweeps.study import check_names, driver_reason, make_pruner, unusable_storage
from tests.helpers.config import LIGHT, QUICK, ROOT
from tests.helpers.outputs import events, experiment_summary, job_metrics, session_hparams

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop


def multirun(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", *overrides, *QUICK, f"hydra.sweep.dir={sweep_dir}"]
    return subprocess.run(cmd, cwd=sweep_dir.parent, capture_output=True, text=True, timeout=300)


def test_a_failed_job_does_not_stop_the_grid_and_is_reported(tmp_path, cli):
    sweep = tmp_path / "sweep"
    batches = "hydra.sweeper.max_batch_size=1"  # the jobs launched one batch each: numbered on across batches
    grid = ("-m", "optimizer.lr=0.05,-1,0.01", "logger=none", *QUICK, f"hydra.sweep.dir={sweep}", batches)
    code, out, err = cli("train.py", *grid)
    assert code != 0, "a multirun with a failed job must exit nonzero"
    assert "1 of 3 jobs failed" in err and "] failed: UserError: optimizer.lr=-1 is invalid" in out + err
    jobs = job_metrics(sweep)
    assert [jobs[j]["status"] for j in ("0", "1", "2")] == ["completed", "failed", "completed"]
    assert "optimizer.lr=-1 is invalid" in jobs["1"]["error"] and "Traceback" in jobs["1"]["traceback"]
    assert jobs["2"]["test"]["test/acc"] > 0.5  # the job after the failure really trained
    log = (sweep / "sweep.log").read_text().splitlines()
    assert len(log) == 3 and "job 1 failed" in log[1] and "optimizer.lr=-1" in log[1]
    report = pd.read_csv(sweep / "report.csv")
    assert report.set_index("job").loc[1, "status"] == "failed"
    assert list(report.status) == ["completed", "completed", "failed"]  # sorted by val/acc, failures last
    assert "## Not completed" in (sweep / "report.md").read_text()
    assert (sweep / "metric_vs_optimizer.lr.png").stat().st_size > 5000


@pytest.mark.slow  # over 30 s on 2 cores: three or more Python processes, each importing Lightning
def test_kfold_sweep_report_matches_the_jobs_and_tensorboard_names_the_runs(tmp_path):
    sweep = tmp_path / "folds"
    # two jobs at a time through hydra-joblib-launcher (conf/hydra/launcher/parallel.yaml)
    folds = ["data.num_folds=2", "data.fold=range(2)"]
    proc = multirun(sweep, "hydra/launcher=parallel", *folds, "optimizer.lr=0.01,0.05")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = job_metrics(sweep)
    assert len(jobs) == 4 and all(m["status"] == "completed" for m in jobs.values())
    # mean ± std over the folds, computed here from the jobs' metrics.json
    by_lr: dict[str, list[dict]] = {}
    for m in jobs.values():
        lr = next(o.split("=")[1] for o in m["overrides"] if o.startswith("optimizer.lr="))
        by_lr.setdefault(lr, []).append(m)
    grouped = pd.read_csv(sweep / "report_grouped.csv").set_index("optimizer.lr")
    for lr, ms in by_lr.items():
        for metric, split in (("val/acc", "val"), ("test/acc", "test")):
            values = np.array([m[split][metric] for m in ms])
            row = grouped.loc[float(lr)]
            assert row["n"] == 2
            assert row[f"{metric} mean"] == pytest.approx(values.mean(), abs=1e-9)
            assert row[f"{metric} std"] == pytest.approx(values.std(ddof=1), abs=1e-9)
    # the folds hold out different validation rows, and the test set is the same for all
    assert len({m["val"]["val/acc"] for m in by_lr["0.01"]}) > 1
    # TensorBoard: one run per job at the sweep root, named by its swept overrides; HParams on those
    runs = {f.parent.name for f in sweep.glob("*/events.out.tfevents.*")}
    assert runs == {f"data.fold={f},optimizer.lr={lr}" for f in (0, 1) for lr in ("0.01", "0.05")}, runs
    hparams = session_hparams(events(sweep / "data.fold=1,optimizer.lr=0.05"))
    assert hparams["data.fold"] == 1 and hparams["optimizer.lr"] == 0.05 and hparams["data.num_folds"] == 2
    swept, metric_names = experiment_summary(sweep)
    assert swept == {"data.fold", "optimizer.lr"} and {"best:val/acc", "best:test/acc"} <= metric_names
    assert (sweep / "val_curves.png").exists() and "mean ± std" in (sweep / "report.md").read_text()


def write_job(sweep: Path, name: str, overrides: list[str], val: float | None) -> None:
    (sweep / name).mkdir(parents=True)
    m = {"status": "failed", "error": "FloatingPointError: diverged", "overrides": overrides}
    if val is not None:
        m = {"status": "completed", "monitor": "val/acc", "mode": "max", "val": {"val/acc": val},
             "test": {"test/acc": val - 0.01}, "wall_time_s": 1.0, "overrides": overrides}  # fmt: skip
    (sweep / name / "metrics.json").write_text(json.dumps(m))


def test_report_of_two_swept_parameters_has_a_heatmap_and_groups_seeds(tmp_path):
    sweep, i = tmp_path / "grid", 0
    for depth in ("[8]", "[8,8]"):
        for lr in (0.001, 0.1):
            for seed in (1, 2):
                val = None if (depth, lr) == ("[8,8]", 0.1) else 0.5 + lr + 0.01 * seed
                write_job(sweep, str(i), [f"model.hidden_sizes={depth}", f"optimizer.lr={lr}", f"seed={seed}"], val)
                i += 1
    report = SweepReport.load(sweep)
    assert report.params == ["model.hidden_sizes", "optimizer.lr", "seed"] and report.group_params[1] == "optimizer.lr"
    paths = {p.name for p in report.write(show=False)}
    assert {"heatmap.png", "report.csv", "report.md", "report_grouped.csv"} <= paths
    g = report.grouped().set_index(["model.hidden_sizes", "optimizer.lr"])
    assert g.loc[("[8]", 0.1), "val/acc mean"] == pytest.approx(0.615)
    assert g.loc[("[8]", 0.1), "val/acc std"] == pytest.approx(np.std([0.61, 0.62], ddof=1))
    assert ("[8,8]", 0.1) not in g.index  # both its jobs failed
    assert len(report.failed_jobs()) == 2


def test_val_curves_are_read_from_csv_logs(tmp_path):
    (tmp_path / "csv").mkdir()
    rows = {"step": [9, 9, 19, 19], "val/acc": [0.5, None, 0.8, None], "train/loss": [None, 1, None, 0.5]}
    pd.DataFrame(rows).to_csv(tmp_path / "csv" / "metrics.csv", index=False)  # as Lightning's CSVLogger writes
    curve = read_curve(tmp_path, "val/acc")
    assert curve.index.tolist() == [9, 19] and curve.tolist() == [0.5, 0.8]
    assert read_curve(tmp_path, "val/f1") is None


def test_report_lists_an_interrupted_job_with_how_to_resume(tmp_path):
    for job, record in {
        "0": {"status": "completed", "monitor": "val/loss", "mode": "min", "val": {"val/loss": 0.3}},
        "1": {
            "status": "interrupted",
            "signal": "SIGTERM",
            "epochs_completed": 4,
            "resume": "litlab train ckpt_path=x",
        },
    }.items():
        (tmp_path / job).mkdir()
        (tmp_path / job / "metrics.json").write_text(json.dumps({**record, "overrides": [f"seed={job}"]}))
    report = SweepReport.load(tmp_path)
    assert report.failed_jobs() == [("1", "interrupted by SIGTERM after 4 epoch(s); resume: litlab train ckpt_path=x")]
    report.write(show=False)
    text = (tmp_path / "report.md").read_text()
    assert "2 jobs: 1 completed, 1 interrupted, 0 failed or unfinished." in text and "interrupted by SIGTERM" in text


def test_report_names_a_dir_without_jobs(tmp_path):
    with pytest.raises(UserError, match="holds no job dirs"):
        SweepReport.load(tmp_path)


@pytest.mark.slow  # over 30 s on 2 cores: two sweeps of 12-epoch trials, each a Python process
def test_a_killed_worker_s_trial_is_failed_by_its_heartbeat_and_run_again_with_its_values(tmp_path):
    """kill -9 mid-trial: the trial stays RUNNING until its heartbeat is grace_period s old, then
    the next worker to ask fails it and runs it again with the same values; n_trials counts
    finished trials, so the search still ends with 4."""
    import optuna

    sweep = tmp_path / "study"
    search = [sys.executable, str(ROOT / "train.py"), "-m", "hparams_search=digits_mlp", *QUICK, "logger=none",
              "trainer.max_epochs=12", "hydra.sweeper.pruner=none", "hydra.sweeper.n_trials=4",
              "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2",
              "optimizer.lr=interval(0.01,0.05)", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    killed = subprocess.Popen(search, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not (sweep / "1" / "checkpoints" / "last.ckpt").exists():  # trial 1 is under way
            assert killed.poll() is None and time.monotonic() < deadline, "trial 1 never started"
            time.sleep(0.05)
    finally:
        killed.kill()
        killed.wait(timeout=30)
    again = subprocess.run(search, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 trial(s) finished, 3 to go" in again.stdout + again.stderr
    study = optuna.load_study(study_name="digits_mlp", storage=f"sqlite:///{sweep}/optuna.db")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 4 and states[1] == "FAIL" and set(states) == {"COMPLETE", "FAIL"}
    retried = [t for t in study.trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == 1]
    assert len(retried) == 1 and retried[0].params == study.trials[1].params
    assert OmegaConf.load(sweep / "best.yaml").trials.total == len(states)
    assert sorted(int(p.name) for p in sweep.iterdir() if p.name.isdigit()) == list(range(len(states)))


@pytest.mark.slow  # over 30 s on 2 cores: three or more Python processes, each importing Lightning
def test_submitit_local_launcher_runs_each_job_in_its_own_process(tmp_path):
    sweep = tmp_path / "submitit"
    proc = multirun(sweep, "hydra/launcher=submitit_local", "optimizer.lr=0.01,0.05", "logger=none")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = job_metrics(sweep)
    assert sorted(jobs) == ["0", "1"] and all(m["test"]["test/acc"] > 0.5 for m in jobs.values())
    logs = list((sweep / ".submitit").rglob("*_log.out"))
    assert len(logs) == 2  # submitit started two job processes, each with its own log
    assert (sweep / "report.csv").exists()  # the end-of-sweep report ran after the submitit jobs


def test_plot_labels_and_scales_read_alike():
    from litlab.sweeps.plots import _axis_values, short_label

    assert [short_label(v) for v in ("[64]", "[64,64]", "[64, 64, 64, 64]")] == ["1x64", "2x64", "4x64"]
    assert short_label("[64,32]") == "[64,32]" and short_label(0.001) == "0.001"
    lrs = pd.Series([0.001, 0.01, 0.001, 0.01])
    assert _axis_values(lrs, lrs)[2]  # a tenfold range is plotted on a log axis


@pytest.mark.slow
def test_optuna_search_in_process_records_failures_resumes_and_writes_best(tmp_path, cli):
    """The Optuna sweeper on optuna's ask-and-tell API, run as `python train.py -m` in this process.
    `n_trials` counts finished trials: a failed one is replaced."""
    sweep = tmp_path / "study"
    space = ["optimizer.lr=choice(0.01,0.05,-1)", "model.dropout=interval(0.0, 0.2)"]
    search = ["-m", "hparams_search=digits_mlp", *QUICK, *LIGHT, "logger=none", "hydra.sweeper.pruner=none",
              "hydra.sweeper.sampler.n_startup_trials=10", f"hydra.sweep.dir={sweep}", *space]  # fmt: skip

    def states() -> list[str]:
        with sqlite3.connect(sweep / "optuna.db") as db:
            return [s for (s,) in db.execute("select state from trials order by number")]

    code, _, err = cli("train.py", *search, "hydra.sweeper.n_trials=3")
    assert code == 0, err[-3000:]  # failed trials are results of a search
    assert states().count("COMPLETE") == 3 and "FAIL" in states()  # the seeded sampler draws -1 once
    code, out, err = cli("train.py", *search, "hydra.sweeper.n_trials=5")
    assert code == 0, err[-3000:]
    assert "3 trial(s) finished, 2 to go" in out + err
    trials = states()
    assert trials.count("COMPLETE") == 5 and set(trials) == {"COMPLETE", "FAIL"}
    jobs = job_metrics(sweep)
    assert sorted(jobs, key=int) == [str(i) for i in range(len(trials))]
    for m in jobs.values():  # each job ran the trial's own values; -1 is refused by the model
        lr = next(o for o in m["overrides"] if o.startswith("optimizer.lr="))
        assert m["status"] == ("failed" if lr == "optimizer.lr=-1" else "completed")
        dropout = float(next(o for o in m["overrides"] if o.startswith("model.dropout=")).split("=")[1])
        assert 0.0 <= dropout <= 0.2
    best = OmegaConf.load(sweep / "best.yaml")
    completed = [m["val"]["val/acc"] for m in jobs.values() if m["status"] == "completed"]
    assert best.value == pytest.approx(max(completed)) and best.params["optimizer.lr"] != -1
    assert "trainer.max_epochs=1" in best.overrides and best.trials.total == len(trials)
    searched = [o for o in best.overrides if o.split("=")[0] in best.params]  # the best trial's job ran these
    assert len(searched) == len(best.params) and set(searched) <= set(jobs[str(best.trial)]["overrides"])
    assert best.metric == "val/acc" and best.direction == "maximize"
    assert (best.trials.complete, best.trials.failed) == (5, trials.count("FAIL")) and best.study_name == "digits_mlp"
    assert set(best.importances) == set(best.params)  # fANOVA's shares of val/acc's variance, each searched one
    assert sum(best.importances.values()) == pytest.approx(1.0)
    assert "## Parameter importances" in (sweep / "report.md").read_text()


@pytest.mark.slow
def test_optuna_search_on_a_journal_file_resumes(tmp_path, cli):
    """storage=journal:PATH, Optuna's journal file for many workers on a shared file system."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    sweep, journal = tmp_path / "study", tmp_path / "journal.log"
    search = [
        "-m",
        "hparams_search=digits_mlp",
        *QUICK,
        "logger=none",
        f"hydra.sweep.dir={sweep}",
        f"hydra.sweeper.storage=journal:{journal}",
    ]
    for n_trials in (1, 2):
        code, out, err = cli("train.py", *search, f"hydra.sweeper.n_trials={n_trials}")
        assert code == 0, err[-3000:]
    assert "1 trial(s) finished, 1 to go" in out + err and not (sweep / "optuna.db").exists()
    study = optuna.load_study(study_name="digits_mlp", storage=JournalStorage(JournalFileBackend(str(journal))))
    assert [t.number for t in study.trials] == [0, 1]
    assert OmegaConf.load(sweep / "best.yaml").storage == f"journal:{journal}"


@pytest.mark.slow
def test_optuna_pruner_stops_a_trial_that_falls_behind(tmp_path, cli):
    """A good trial first, then hopeless ones (lr 1e-7): the median pruner stops those after one
    epoch. Each pruned job kept its checkpoint and metrics.json; study and report say PRUNED."""
    import optuna

    sweep = tmp_path / "study"
    search = ["-m", "hparams_search=digits_mlp", *QUICK, *LIGHT, "logger=none", "trainer.max_epochs=4",
              f"hydra.sweep.dir={sweep}", "hydra.sweeper.pruner=median",
              "hydra.sweeper.pruner_args={n_startup_trials:1}"]  # fmt: skip
    code, _, err = cli("train.py", *search, "hydra.sweeper.n_trials=1", "optimizer.lr=interval(0.05, 0.05)")
    assert code == 0, err[-3000:]
    code, out, err = cli("train.py", *search, "hydra.sweeper.n_trials=3", "optimizer.lr=interval(1e-7, 1e-7)")
    assert code == 0, err[-3000:]
    study = optuna.load_study(study_name="digits_mlp", storage=f"sqlite:///{sweep}/optuna.db")
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "PRUNED", "PRUNED"]
    assert [len(t.intermediate_values) for t in study.trials] == [4, 1, 1]  # one report per epoch, fit only
    jobs = job_metrics(sweep)
    for job in ("1", "2"):
        assert jobs[job]["status"] == "pruned" and jobs[job]["pruned_at_epoch"] == 0 and jobs[job]["epochs"] == 1
        assert Path(jobs[job]["best_ckpt"]).exists() and (sweep / job / "checkpoints" / "last.ckpt").exists()
        assert jobs[job]["val"]["val/acc"] == pytest.approx(study.trials[int(job)].intermediate_values[0])
    best = OmegaConf.load(sweep / "best.yaml")
    assert best.trial == 0 and best.trials.pruned == 2
    report = (sweep / "report.md").read_text()
    assert "3 jobs: 1 completed, 2 pruned, 0 interrupted, 0 failed or unfinished." in report


@pytest.mark.slow  # over 30 s on 2 cores: two worker processes, each importing Lightning
def test_local_gpus_runs_one_job_per_gpu_at_a_time(tmp_path):
    """hydra/launcher=local_gpus with 2 GPUs listed (none needed: torch stays on the CPU): 2 worker
    processes, each with its own CUDA_VISIBLE_DEVICES for all the jobs it runs, so no two
    running jobs share a GPU; the 4 jobs queue on them."""
    sweep = tmp_path / "gpus"
    proc = multirun(sweep, "hydra/launcher=local_gpus", "hydra.launcher.gpus=[0,1]", "optimizer.lr=0.01,0.02,0.03,0.05")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = job_metrics(sweep)
    assert sorted(jobs) == ["0", "1", "2", "3"] and all(m["status"] == "completed" for m in jobs.values())
    gpu_of_worker = {}
    for m in jobs.values():
        env = m["environment"]
        assert gpu_of_worker.setdefault(env["pid"], env["CUDA_VISIBLE_DEVICES"]) == env["CUDA_VISIBLE_DEVICES"]
    assert len(gpu_of_worker) == 2 and sorted(gpu_of_worker.values()) == ["0", "1"]


def test_an_unknown_pruner_is_one_line_before_any_trial(tmp_path, cli):
    sweep = tmp_path / "study"
    code, out, err = cli("train.py", "-m", "hparams_search=digits_mlp", *QUICK, f"hydra.sweep.dir={sweep}",
                         "hydra.sweeper.pruner=bogus")  # fmt: skip
    assert code == 2 and "hydra.sweeper.pruner='bogus' is not a pruner; use one of none, median" in out + err
    assert not list(sweep.glob("*/metrics.json"))


def test_local_gpus_refuses_a_bad_gpu_list_before_any_job(tmp_path, cli):
    sweep = tmp_path / "gpus"
    code, out, err = cli("train.py", "-m", "hydra/launcher=local_gpus", "hydra.launcher.gpus=[]", *QUICK,
                         "optimizer.lr=0.01,0.02", f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert code == 2 and "hydra.launcher.gpus=[] is invalid: give GPU indices" in out + err
    assert not list(sweep.glob("*/metrics.json"))


def test_a_storage_that_cannot_be_opened_is_named_with_the_driver_s_own_first_line():
    """Beneath SQLAlchemy's error (several lines of its own) the database driver's reason; any other
    error's first line."""
    from sqlalchemy.exc import OperationalError

    wrapped = OperationalError("SELECT 1", {}, sqlite3.OperationalError("unable to open database file\nmore"))
    assert driver_reason(wrapped) == "unable to open database file"
    assert driver_reason(FileNotFoundError("no such dir\nmore")) == "no such dir"
    message = str(unusable_storage("sqlite:////no/x.db", wrapped))
    assert message.startswith("hydra.sweeper.storage='sqlite:////no/x.db' cannot be opened: unable to open database")
    assert "give sqlite:///PATH or journal:PATH in an existing dir, or an RDB URL that is reachable" in message


def test_an_optuna_study_refuses_to_resume_under_other_settings(tmp_path, cli):
    sweep = tmp_path / "study"
    search = ["-m", "hparams_search=digits_mlp", *QUICK, "logger=none", "hydra.sweeper.n_trials=1",
              "hydra.sweeper.pruner=none", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    code, _, err = cli("train.py", *search)
    assert code == 0, err[-3000:]
    longer = [o.replace("trainer.max_epochs=1", "trainer.max_epochs=2") for o in search]
    code, _, err = cli("train.py", *longer, "hydra.sweeper.n_trials=2")
    assert code == 2 and "Traceback" not in err, err[-3000:]
    assert "trainer.max_epochs=1" in err and "trainer.max_epochs=2" in err and "hydra.sweep.dir=" in err
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == ["0"]  # no trial of the other settings ran


def test_job_dirs_named_by_trial_number_refuse_a_dir_of_another_trial_or_study(tmp_path):
    """A search names its job dirs by trial number, which its study hands out once: a dir already
    there is this study's trial of that number, or the search would write into another's dir."""

    def job(num: str, *overrides: str) -> None:
        (tmp_path / num / ".hydra").mkdir(parents=True)
        (tmp_path / num / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))

    job("0", "optimizer.lr=0.1", "optuna.study_name='s'", "optuna.trial=0")
    (tmp_path / "1").mkdir()  # another worker's job, starting: no overrides yet
    (tmp_path / "notes").mkdir()
    check_job_dirs(tmp_path, "s")
    job("2", "optuna.study_name='s'", "optuna.trial=7")
    with pytest.raises(UserError, match=rf"^{tmp_path}/2 is not trial 2 of study 's' \(its overrides: optuna"):
        check_job_dirs(tmp_path, "s")
    with pytest.raises(UserError, match=rf"^{tmp_path}/0 is not trial 0 of study 'other'.*new hydra.sweep.dir$"):
        check_job_dirs(tmp_path, "other")


def test_a_trial_s_values_are_written_as_overrides_hydra_reads_back():
    assert as_text([64, 64]) == "[64,64]" and as_text(("a", 0.5)) == "[a,0.5]"
    assert as_text({"n_startup_trials": 1, "sizes": [8, 16]}) == "{n_startup_trials:1,sizes:[8,16]}"
    assert as_text(0.1 + 0.2) == "0.30000000000000004" and as_text("adam") == "adam" and as_text(True) == "True"


@pytest.mark.parametrize("name, kind", [("none", "NopPruner"), ("median", "MedianPruner")])
def test_the_study_stops_trials_with_the_pruner_and_arguments_named_and_labels_the_metric(name, kind):
    """Optuna's own default is a median pruner of 5 startup trials: `pruner=none` must reach the
    study as no pruning, and pruner_args as given. optuna-dashboard labels its plots with the metric."""
    sweeper = OptunaSweeper(direction="maximize", pruner=name, pruner_args={"n_startup_trials": 7}, study_name="s")
    sweeper.config = OmegaConf.create({"monitor": {"metric": "val/acc"}})  # setup() is Hydra's
    study = sweeper.study(None)
    assert type(study.pruner).__name__ == kind and study.metric_names == ["val/acc"]
    for _ in range(6):  # six good trials: more than Optuna's default startup, fewer than the 7 asked for
        good = study.ask()
        good.report(1.0, step=0)
        study.tell(good, 1.0)
    bad = study.ask()
    bad.report(0.0, step=0)
    assert not bad.should_prune()


def test_each_search_space_form_becomes_the_optuna_distribution_it_names():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from hydra_plugins.litlab_sweepers.search_space import distribution

    given = ["a=tag(log, interval(0.001, 0.1))", "b=tag(log, int(interval(1, 64)))", "c=interval(0, 0.5)",
             "d=choice([64,64],[32],relu)", "e=range(2, 11, 3)", "f=range(0.5, 2.0, 0.5)"]  # fmt: skip
    parsed = OverridesParser.create().parse_overrides(given)
    assert [distribution(o) for o in parsed] == [
        FloatDistribution(0.001, 0.1, log=True),
        IntDistribution(1, 64, log=True),
        FloatDistribution(0.0, 0.5),
        CategoricalDistribution(["[64,64]", "[32]", "relu"]),
        IntDistribution(2, 8, step=3),  # range() leaves out its stop: 2, 5, 8
        CategoricalDistribution([0.5, 1.0, 1.5]),
    ]
    with pytest.raises(UserError, match=r"^g=glob\(\*\): not a search space"):
        distribution(OverridesParser.create().parse_overrides(["g=glob(*)"])[0])


def test_a_resumed_search_draws_from_its_seed_plus_the_trials_so_far_not_the_first_values_again(tmp_path):
    """A seeded sampler in a new process would propose the study's first trials over again."""
    import functools

    import optuna

    storage, space = f"sqlite:///{tmp_path}/optuna.db", {"x": optuna.distributions.FloatDistribution(0, 1)}
    sweeper = OptunaSweeper(sampler=functools.partial(optuna.samplers.TPESampler, seed=3), direction="maximize",
                            study_name="s")  # fmt: skip
    sweeper.config = None
    first = sweeper.study(storage)
    for _ in range(2):
        trial = first.ask(space)
        first.tell(trial, 0.5)
    drawn = [t.params["x"] for t in first.trials]
    resumed = sweeper.study(storage).ask(space).params["x"]
    fresh = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=5)).ask(space).params["x"]  # 3 + 2 trials
    assert resumed == fresh and resumed not in drawn


def test_a_storage_that_cannot_be_opened_is_named_as_the_user_gave_it(tmp_path):
    storage = f"sqlite:///{tmp_path}/missing/optuna.db"
    sweeper = OptunaSweeper(storage=storage, direction="maximize", study_name="s")
    sweeper.config = None
    with pytest.raises(UserError, match=rf"^hydra.sweeper.storage='{storage}' cannot be opened: "):
        sweeper.opened_study()


def test_a_value_fixed_on_the_command_line_leaves_the_preset_s_search_and_one_both_fixed_and_searched_is_refused(
    tmp_path, cli
):
    sweep = tmp_path / "study"
    search = ["-m", "hparams_search=digits_mlp", *QUICK, *LIGHT, "logger=none", f"hydra.sweep.dir={sweep}",
              "hydra.sweeper.n_trials=1"]  # fmt: skip
    code, _, err = cli("train.py", *search, "optimizer.lr=0.02")  # the preset searches optimizer.lr
    assert code == 0, err[-3000:]
    best = OmegaConf.load(sweep / "best.yaml")
    assert "optimizer.lr" not in best.params and "optimizer.lr=0.02" in best.overrides
    assert "optimizer.lr=0.02" in job_metrics(sweep)["0"]["overrides"]
    code, out, err = cli("train.py", *search, "trainer.max_epochs=range(2, 5)", "trainer.max_epochs=1")
    assert code == 2 and (out + err).strip().splitlines()[-1] == (
        "Error: trainer.max_epochs=1: the command line also searches trainer.max_epochs; give it once, a value or a "
        "search space"
    )


def test_the_names_each_trial_s_job_gets_as_overrides_are_text_it_can_quote():
    check_names("sqlite:///logs/optuna.db", "digits")
    check_names(None, None)
    for storage, study_name, refused in [("sqlite:///it's.db", None, "hydra.sweeper.storage=\"sqlite:///it's.db\""),
                                         (None, "a\\b", "hydra.sweeper.study_name='a\\\\b'"),
                                         (None, 3, "hydra.sweeper.study_name=3")]:  # fmt: skip
        with pytest.raises(UserError) as error:
            check_names(storage, study_name)
        assert str(error.value).startswith(f"{refused} is invalid: give text without quotes or backslashes")


def test_each_pruner_name_builds_its_optuna_class():
    from optuna import pruners

    classes = {"none": pruners.NopPruner, "median": pruners.MedianPruner, "hyperband": pruners.HyperbandPruner,
               "successive_halving": pruners.SuccessiveHalvingPruner}  # fmt: skip
    assert {name: type(make_pruner(name)) for name in classes} == classes


def test_the_search_s_settings_are_checked_before_any_trial():
    def checked(monitor: dict | None = None, **settings) -> list[str]:
        sweeper = OptunaSweeper(**settings)
        sweeper.check(OmegaConf.create({} if monitor is None else {"monitor": monitor}))
        return sweeper.directions

    assert checked() == ["minimize"]  # no monitor given: val/loss, lower is better
    assert checked({"metric": "val/acc"}) == checked({"metric": "val/acc", "mode": "max"}) == ["maximize"]
    assert checked({"metric": "val/acc"}, direction="maximize", storage=None) == ["maximize"]  # no pruner: in memory
    refusals = [
        ({"monitor": {"metric": "val/acc", "mode": "min"}}, "monitor.mode=min contradicts val/acc"),
        ({"monitor": {"metric": "val/acc"}, "direction": "minimize"},
         "hydra.sweeper.direction=minimize contradicts monitor.metric=val/acc"),
        ({"pruner": "median", "pruner_args": {"bogus": 1}, "storage": "sqlite:///x.db"},
         "hydra.sweeper.pruner_args={'bogus': 1}: "),
        ({"storage": "sqlite:///it's.db"}, "hydra.sweeper.storage=\"sqlite:///it's.db\" is invalid"),
        ({"pruner": "median", "storage": None}, "hydra.sweeper.pruner=median needs a storage the jobs can report to"),
    ]  # fmt: skip
    for settings, message in refusals:
        with pytest.raises(UserError) as refused:
            checked(**settings)
        assert str(refused.value).startswith(message)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # set_metric_names, as the sweeper uses it
def test_a_worker_s_report_lists_the_trials_other_workers_ran_in_their_own_sweep_dirs(tmp_path, caplog):
    """Workers of one study, each with its own sweep dir: the report of either dir lists every trial,
    read from the other worker's job dir where it is on this machine, else from the study."""
    import optuna

    from litlab.files.run_record import RunRecord
    from litlab.sweeps.study import write_study_file

    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="shared", storage=storage, direction="minimize")
    study.set_metric_names(["val/loss"])
    mine, theirs, gone = tmp_path / "mine", tmp_path / "theirs", tmp_path / "gone"
    space = {"optimizer.lr": optuna.distributions.FloatDistribution(0.001, 1)}
    trials = [(mine, 0.1, 0.3), (theirs, 0.01, 0.2), (gone, 0.05, 0.1), (gone, 0.02, None)]  # the last one runs
    for number, (where, lr, loss) in enumerate(trials):
        trial = study.ask(space)
        trial.set_user_attr("job_dir", str(where / str(number)))  # as the sweeper records them
        trial.set_user_attr("searched_overrides", [f"optimizer.lr={lr}"])
        trial.set_user_attr("fixed_overrides", ["trainer.max_epochs=3"])
        if where != gone:
            RunRecord("completed", monitor="val/loss", mode="min", val={"val/loss": loss}, test={"test/acc": 0.9},
                      overrides=[f"optimizer.lr={lr}", "trainer.max_epochs=3"], wall_time_s=2.0,
                      ).write(where / str(number))  # fmt: skip
        if loss is not None:
            study.tell(trial, loss)
    write_study_file(mine, "shared", storage)
    report = SweepReport.load(mine)
    assert report.jobs.job.tolist() == ["2", "1", "0", "3"]  # by val/loss, lowest first; the running one last
    assert report.jobs["optimizer.lr"].tolist() == [0.05, 0.01, 0.1, 0.02]
    assert report.fixed == {"trainer.max_epochs": "3"}  # the study's trials have the same fixed overrides
    jobs = report.jobs.set_index("job")
    assert jobs.loc["1", "test/acc"] == 0.9 and jobs.loc["1", "wall_time_s"] == 2.0  # its dir's full record
    assert jobs.loc["2", "val/loss"] == 0.1 and jobs.loc["2", "status"] == "completed"
    assert jobs.loc["2", "error"] == f"{gone / '2'} is not on this machine: read from the study"
    assert jobs.loc["2", "wall_time_s"] >= 0 and jobs.loc["3", "status"] == "unfinished"
    assert report.mode == "min" and report.monitor == "val/loss"
    # the study gone (a file deleted, a database down): a warning, and the dir's own jobs
    (tmp_path / "optuna.db").rename(tmp_path / "moved.db")
    assert SweepReport.load(mine).jobs.job.tolist() == ["0"]
    assert "cannot be read" in caplog.text and not (tmp_path / "optuna.db").exists()


def test_slots_in_threads_all_run_and_the_first_error_stops_the_rest_and_is_raised():
    from litlab.sweeps.budget import Budget, run_in_threads

    budget, ran = Budget(n_trials=5), []
    run_in_threads(3, lambda: ran.append(1), budget)
    assert ran == [1, 1, 1] and not budget.stopped

    def slot() -> None:
        if len(ran) == 3:
            ran.append(2)
            raise ValueError("a slot's launcher failed")
        time.sleep(0.2)

    with pytest.raises(ValueError, match="a slot's launcher failed"):
        run_in_threads(2, slot, budget)
    assert budget.stopped  # no slot asks for another trial


def test_a_worker_asks_for_trials_only_while_finished_and_running_ones_are_fewer_than_n_trials():
    import optuna
    from optuna.trial import TrialState

    from litlab.sweeps.budget import Budget

    study = optuna.create_study(direction="maximize")
    space = {"optimizer.lr": optuna.distributions.FloatDistribution(0.001, 1)}
    budget = Budget(n_trials=2)
    first, second = budget.next_trial(study, space, ["seed=1"]), budget.next_trial(study, space, ["seed=1"])
    assert first is not None and second is not None and budget.running == 2
    assert budget.next_trial(study, space, ["seed=1"]) is None  # 0 finished + 2 running: the budget is out
    study.tell(first, 0.5)
    budget.ended(TrialState.COMPLETE)
    assert budget.running == 1 and budget.next_trial(study, space, []) is None  # 1 finished + 1 running
    study.tell(second, state=TrialState.FAIL)
    budget.ended(TrialState.FAIL)
    assert (budget.running, budget.failed) == (0, 1)
    replacement = budget.next_trial(study, space, [])  # a failed trial is replaced
    assert replacement is not None and replacement.user_attrs["fixed_overrides"] == []
    assert list(replacement.params) == ["optimizer.lr"]  # drawn from the search space
    study.tell(replacement, state=TrialState.FAIL)
    budget.ended(TrialState.FAIL)
    assert budget.next_trial(study, space, []) is None and budget.stopped  # 2 failures of 2: it stops


def test_a_trial_known_only_to_the_study_keeps_its_direction_and_says_where_its_job_was_not():
    import optuna

    from litlab.sweeps.jobs import trial_row

    study = optuna.create_study(direction="maximize")
    trial = study.ask({"optimizer.lr": optuna.distributions.FloatDistribution(0.001, 1)})
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    row = trial_row(study, study.trials[0])  # no metric names, no job dir recorded, no value
    assert row["mode"] == "max" and row["monitor"] is None and row["metrics"] == {} and row["status"] == "pruned"
    assert row["error"] == "its job dir is not on this machine: read from the study" and row["params"] == {}


@pytest.mark.parametrize(
    ("storage", "absolute"),
    [
        ("sqlite:///rel/optuna.db", "sqlite:///{cwd}/rel/optuna.db"),
        ("journal:rel/study.log", "journal:{cwd}/rel/study.log"),
        ("sqlite:////abs/optuna.db", "sqlite:////abs/optuna.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite:///rel.db?timeout=5", "sqlite:///rel.db?timeout=5"),  # a query: left as given
        ("postgresql+psycopg://u@host/db", "postgresql+psycopg://u@host/db"),
    ],
)
def test_the_study_file_records_a_file_storage_by_its_absolute_path(tmp_path, monkeypatch, storage, absolute):
    from litlab.sweeps.study import read_study_file, write_study_file

    monkeypatch.chdir(tmp_path)
    write_study_file(tmp_path, "s", storage)
    assert read_study_file(tmp_path) == ("s", absolute.format(cwd=tmp_path.resolve()))
    (tmp_path / "optuna_study.json").write_text('{"study_name": 1, "storage": "x"}')  # not litlab's
    assert read_study_file(tmp_path) is None


def test_parameter_importances_are_fanova_s_seeded_shares_over_the_completed_trials_of_what_varied():
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState

    from litlab.sweeps.study import importances

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
    space = {"lr": optuna.distributions.FloatDistribution(0.001, 1, log=True),
             "width": optuna.distributions.IntDistribution(8, 64),
             "depth": optuna.distributions.IntDistribution(2, 2)}  # fixed: not searched  # fmt: skip
    assert importances(study) is None
    first = study.ask(space)
    study.tell(first, first.params["lr"])
    assert importances(study) is None  # one completed trial
    for _ in range(11):
        trial = study.ask(space)
        study.tell(trial, 3 * trial.params["lr"] + 0.01 * trial.params["width"])
    late = study.ask({"momentum": optuna.distributions.FloatDistribution(0, 1)})  # running, another parameter
    study.tell(study.ask(space), state=TrialState.FAIL)
    shares = importances(study)
    fanova = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), params=["lr", "width"])
    assert shares == pytest.approx(dict(fanova)) and list(shares) == ["lr", "width"] and late.number == 12
    assert sum(shares.values()) == pytest.approx(1.0)
    two = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(2):
        trial = two.ask(space)
        two.tell(trial, trial.params["lr"])
    assert importances(two) is not None  # two completed trials are enough


def test_sqlite_waits_a_minute_for_another_worker_s_write_and_a_server_keeps_its_own_settings():
    from litlab.sweeps.study import waiting_engine

    assert waiting_engine("sqlite:///logs/optuna.db") == {"connect_args": {"timeout": 60}}
    assert waiting_engine("postgresql+psycopg://u@127.0.0.1/db") == {}


def test_a_study_is_read_by_its_name_from_a_storage_that_holds_several(tmp_path):
    import optuna

    from litlab.sweeps.study import stored_study

    storage = f"sqlite:///{tmp_path}/optuna.db"
    for name in ("a", "b"):
        optuna.create_study(study_name=name, storage=storage)
    assert stored_study("b", storage).study_name == "b"
    with pytest.raises(FileNotFoundError, match="gone.db"):
        stored_study("b", f"sqlite:///{tmp_path}/gone.db")


def test_the_search_s_counts_are_whole_numbers_and_only_the_nullable_ones_may_be_null():
    from litlab.sweeps.study import check_counts

    check_counts({"n_trials": 1, "n_jobs": 2, "heartbeat_interval": None, "grace_period": None, "max_retry": 0})
    for values, refused in [({"heartbeat_interval": 0}, "hydra.sweeper.heartbeat_interval=0 is invalid"),
                            ({"n_trials": None}, "hydra.sweeper.n_trials=None is invalid"),
                            ({"max_retry": -1}, "hydra.sweeper.max_retry=-1 is invalid"),
                            ({"grace_period": 2.5}, "hydra.sweeper.grace_period=2.5 is invalid")]:  # fmt: skip
        with pytest.raises(UserError, match=f"^{refused}"):
            check_counts(values)


def test_the_lock_names_its_holder_from_at_most_300_bytes_of_any_text(tmp_path):
    import os

    from litlab.sweeps.lock import owner, refuse

    path = tmp_path / ".sweep.lock"
    path.write_bytes(b"\xff4242 on host\n")  # not UTF-8: replaced, not an error
    fd = os.open(path, os.O_RDONLY)
    try:
        assert owner(fd) == "\ufffd4242 on host"
        path.write_bytes(b"h" * 400)
        assert owner(fd) == "h" * 300
    finally:
        os.close(fd)
    path.write_bytes(b"")
    with pytest.raises(UserError, match=r"is in use by another sweep \(process \?\)"):
        refuse(path, os.open(path, os.O_RDONLY))


def test_a_job_dir_counts_once_hydra_started_the_job_even_before_its_record(tmp_path):
    from litlab.sweeps.jobs import job_dirs

    (tmp_path / "0" / ".hydra").mkdir(parents=True)
    (tmp_path / "1").mkdir()  # made, nothing written yet
    assert job_dirs(tmp_path) == [tmp_path / "0"]


def test_a_study_file_that_is_not_litlab_s_is_no_study(tmp_path):
    from litlab.sweeps.study import read_study_file

    for text in ("[1, 2]", '{"study_name": "s"}', '"s"'):
        (tmp_path / "optuna_study.json").write_text(text)
        assert read_study_file(tmp_path) is None, text


@pytest.mark.filterwarnings("ignore:.*set_metric_names is experimental")
def test_a_completed_trial_known_only_to_the_study_shows_its_value_under_its_metric_name_only():
    import optuna

    from litlab.sweeps.jobs import trial_row

    study = optuna.create_study(direction="minimize")
    study.tell(study.ask(), 0.25)
    row = trial_row(study, study.trials[0])
    assert (row["mode"], row["monitor"], row["metrics"], row["status"]) == ("min", None, {}, "completed")
    study.set_metric_names(["val/loss"])
    assert trial_row(study, study.trials[0])["metrics"] == {"val/loss": 0.25}


def test_a_trial_records_its_job_dir_and_searched_values_and_an_interrupted_job_fails_it(tmp_path, monkeypatch):
    import optuna
    from optuna.trial import TrialState

    study = optuna.create_study(direction="maximize")
    sweeper = OptunaSweeper(direction="maximize", study_name="s")
    monkeypatch.chdir(tmp_path)
    sweeper.sweep_dir = Path("sweep")  # relative, as a user gives it: recorded absolute
    monkeypatch.setattr(sweeper, "validate_batch_is_legal", lambda batch: None)  # needs Hydra's config loader

    class Interrupted:
        """A launcher Ctrl-C stops while the job runs; `fail_first`: another worker's check of stale
        trials failed this one meanwhile."""

        def __init__(self, fail_first: bool) -> None:
            self.fail_first = fail_first

        def launch(self, batch, initial_job_idx):
            if self.fail_first:
                study.tell(initial_job_idx, state=TrialState.FAIL)
            raise KeyboardInterrupt

    for number, fail_first in enumerate([False, True]):
        sweeper.launcher = Interrupted(fail_first)
        trial = study.ask({"optimizer.lr": optuna.distributions.FloatDistribution(0.001, 1)})
        with pytest.raises(KeyboardInterrupt):
            sweeper.run_trial(study, trial, ["seed=1"])
        stored = study.trials[number]
        assert stored.state == TrialState.FAIL and stored.user_attrs["job_dir"] == str(tmp_path / "sweep" / str(number))
        assert stored.user_attrs["searched_overrides"] == [f"optimizer.lr={stored.params['optimizer.lr']!r}"]


def test_ctrl_c_stops_every_slot_from_asking_for_another_trial():
    import _thread
    import threading

    from litlab.sweeps.budget import Budget, run_in_threads

    budget, seen, first = Budget(n_trials=10), [], threading.Lock()

    def slot() -> None:
        if first.acquire(blocking=False):
            _thread.interrupt_main()  # what Ctrl-C does: only the main thread gets it
        deadline = time.monotonic() + 10
        while not budget.stopped and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(budget.stopped)

    # Python's own SIGINT handler, as in a terminal: a test runner's worker may have set another,
    # and interrupt_main does nothing where Python does not handle the signal.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_in_threads(2, slot, budget)
    finally:
        signal.signal(signal.SIGINT, before)
    assert seen and all(seen)  # every slot that started saw the stop (the interrupt may come before the second starts)


def test_a_worker_s_asks_on_a_storage_with_heartbeats_show_no_optuna_warning(tmp_path):
    """Heartbeats are "experimental" in Optuna and meant "for Study.optimize": a worker beats them
    itself, and neither notice is the user's concern."""
    import warnings

    import optuna

    from litlab.sweeps.budget import Budget
    from litlab.sweeps.study import open_storage

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        storage = open_storage(f"sqlite:///{tmp_path}/optuna.db", heartbeat_interval=60, grace_period=120, max_retry=3)
        study = optuna.create_study(storage=storage, direction="maximize")
        trial = Budget(n_trials=2).next_trial(study, {"x": optuna.distributions.FloatDistribution(0, 1)}, [])
    assert trial is not None and [str(w.message) for w in shown] == []


@pytest.mark.filterwarnings("ignore:.*set_metric_names is experimental")
def test_a_multi_objective_trial_known_only_to_the_study_names_no_single_monitor():
    import optuna

    from litlab.sweeps.jobs import trial_row

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_metric_names(["val/acc", "val/loss"])
    study.tell(study.ask(), [0.9, 0.3])
    row = trial_row(study, study.trials[0])
    assert (row["monitor"], row["metrics"], row["status"]) == (None, {}, "completed")


def test_a_job_s_parameters_leave_out_how_it_was_launched_and_an_unreadable_file_names_its_first_line():
    from litlab.sweeps.jobs import params_of, unreadable

    overrides = ["optimizer.lr=0.1", "optuna.trial=3", "optuna.study_name='s'", "hparams_search=digits_mlp", "seed=1"]
    assert params_of(overrides) == {"optimizer.lr": "0.1", "seed": "1"}
    said = str(unreadable(Path("sweep/3/.hydra/overrides.yaml"), ValueError("not YAML\nline 2")))
    assert said.startswith("sweep/3/.hydra/overrides.yaml cannot be read: not YAML; move that job's dir")
    assert "cannot be read: KeyError;" in str(unreadable(Path("f"), KeyError()))  # no message: its type


def test_a_worker_waits_out_another_worker_s_moment_of_exclusive_hold_but_not_a_grid_sweep_s(tmp_path, monkeypatch):
    """Workers started at once: one holds the lock exclusively while it checks the file, then shares
    it; the other waits for that. A grid sweep's exclusive hold is refused after the wait."""
    import fcntl
    import os
    import threading

    from litlab.sweeps import lock

    holder = os.open(tmp_path / lock.LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    threading.Timer(0.3, lambda: fcntl.flock(holder, fcntl.LOCK_SH)).start()  # checked: now shared
    with lock.sweep_lock(tmp_path, shared=True):
        assert (tmp_path / lock.LOCK).read_text().startswith(f"{os.getpid()}@")
    fcntl.flock(holder, fcntl.LOCK_EX)  # a grid sweep's, for as long as it runs
    monkeypatch.setattr(lock, "SHARED_WAIT_S", 0.2)
    with pytest.raises(UserError, match="is in use by another sweep"), lock.sweep_lock(tmp_path, shared=True):
        pass
    os.close(holder)
