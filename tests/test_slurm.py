"""Sweeps, DDP and Optuna through a real SLURM cluster (tests/helpers/slurm_cluster.py), with the launcher
users run on their clusters: `hydra/launcher=slurm_gpu` (hydra-submitit-launcher, sbatch + srun).
`pytest -m slurm` runs exactly these; they skip, saying why, where SLURM is not installed. All are slow
(a cluster started, jobs submitted, each a new process importing Lightning): CI runs them after the
fast suite (.ci/run)."""

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from litlab.checkpoints.store import finished
from tests.helpers.config import ROOT
from tests.helpers.outputs import job_metrics
from tests.helpers.processes import started
from tests.helpers.slurm_cluster import LocalCluster, missing

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.e2e,
              pytest.mark.skipif(missing() is not None, reason=str(missing()))]  # fmt: skip

# Small jobs on the local node (2 CPUs, 2 fake GPUs): one CPU each, torch on the CPU.
ON_NODE = ["hydra/launcher=slurm_gpu", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
           "hydra.launcher.timeout_min=10", "trainer.accelerator=cpu"]  # fmt: skip
SMALL = ["trainer.max_epochs=2", "trainer.enable_progress_bar=false", "logger=none", "extras.print_config=false"]


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory):
    cluster = LocalCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def sweep(cluster: LocalCluster, sweep_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`python train.py -m ...` submitting its jobs to `cluster`."""
    cmd = [sys.executable, "train.py", "-m", *ON_NODE, *SMALL, f"hydra.sweep.dir={sweep_dir}", *args]
    return subprocess.run(cmd, cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=240)


def test_grid_sweep_gives_each_job_its_own_gpu_and_records_a_failed_job(slurm, tmp_path):
    proc = sweep(slurm, tmp_path / "grid", "optimizer.lr=0.05,-1")  # -1: the model refuses it
    assert proc.returncode == 1, proc.stderr[-3000:]  # the sweep ends saying a job failed
    jobs = job_metrics(tmp_path / "grid")
    assert jobs["0"]["status"] == "completed" and jobs["0"]["test"]["test/acc"] > 0.8
    assert jobs["1"]["status"] == "failed" and "optimizer.lr=-1" in jobs["1"]["error"]
    # Both jobs ran at once (2 CPUs, one each), each on the GPU SLURM gave it.
    where = [jobs[j]["environment"] for j in ("0", "1")]
    assert sorted(w["CUDA_VISIBLE_DEVICES"] for w in where) == ["0", "1"]
    assert all(w["SLURM_JOB_ID"] for w in where)
    assert "1 of 2 jobs failed" in proc.stdout + proc.stderr


def test_ddp_job_with_two_tasks_through_srun(slurm, tmp_path):
    ddp = ["hydra.launcher.tasks_per_node=2", "hydra.launcher.gpus_per_node=0", "trainer=ddp", "trainer.devices=2"]
    proc = sweep(slurm, tmp_path / "ddp", *ddp, "seed=7")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = job_metrics(tmp_path / "ddp")
    assert list(jobs) == ["0"] and jobs["0"]["status"] == "completed" and jobs["0"]["world_size"] == 2
    assert jobs["0"]["test"]["test/acc"] > 0.8
    # srun started the two ranks: one submitit log per task, each rank joined the process group.
    logs = sorted((tmp_path / "ddp" / ".submitit").rglob("*_log.err"))
    assert len(logs) == 2
    for rank, log in enumerate(logs):
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in log.read_text()


def test_optuna_search_prunes_trials_running_at_once_as_slurm_jobs(slurm, tmp_path):
    """A good trial, then two hopeless ones (lr 1e-7) submitted together (n_jobs=2): each SLURM
    job reports its epochs to the study in a journal file, and the median pruner stops both.
    Over a minute: two searches, three SLURM jobs."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal, sweep_dir = tmp_path / "journal.log", tmp_path / "study"
    search = ["hparams_search=digits_mlp", "trainer.max_epochs=3", f"hydra.sweeper.storage=journal:{journal}",
              "hydra.sweeper.pruner=median", "hydra.sweeper.pruner_args={n_startup_trials:1}",
              "hydra.sweeper.n_jobs=2"]  # fmt: skip
    first = sweep(slurm, sweep_dir, *search, "hydra.sweeper.n_trials=1", "optimizer.lr=interval(0.05, 0.05)")
    assert first.returncode == 0, first.stderr[-3000:]
    second = sweep(slurm, sweep_dir, *search, "hydra.sweeper.n_trials=3", "optimizer.lr=interval(1e-7, 1e-7)")
    assert second.returncode == 0, second.stderr[-3000:]
    study = optuna.load_study(study_name="digits_mlp", storage=JournalStorage(JournalFileBackend(str(journal))))
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED", "PRUNED"]
    jobs = job_metrics(sweep_dir)
    assert [jobs[j]["status"] for j in ("0", "1", "2")] == ["completed", "pruned", "pruned"]
    # the two pruned trials were SLURM jobs of their own, both submitted before either finished (each
    # slot submits its trial as it frees, no batch barrier). Their training spans need not overlap: one
    # job may start its Python seconds after the other, and a pruned trial trains for about a second.
    ids = [jobs[j]["environment"]["SLURM_JOB_ID"] for j in ("1", "2")]
    assert ids[0] != ids[1]
    times = [submitted_and_finished(sweep_dir / ".submitit", job) for job in ids]
    assert max(s for s, _ in times) < min(f for _, f in times), times


def submitted_and_finished(submitit_dir: Path, job_id: str) -> tuple[float, float]:
    """When submitit wrote the job's submission and its result (the files' modification times)."""
    folder = submitit_dir / job_id
    return (folder / f"{job_id}_submitted.pkl").stat().st_mtime, (folder / f"{job_id}_0_result.pkl").stat().st_mtime


def test_a_job_array_of_three_workers_runs_one_search_on_a_journal_file(slurm, tmp_path):
    """`sbatch --array=0-2` of one search command: three workers, two at a time on the node's two CPUs,
    share one study in a journal file and one sweep dir, each running its trials in its own process."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal, sweep_dir = tmp_path / "journal.log", tmp_path / "study"
    search = [sys.executable, "train.py", "-m", *SMALL, "trainer.accelerator=cpu", "hparams_search=digits_mlp",
              f"hydra.sweeper.storage=journal:{journal}", "hydra.sweeper.study_name=array", "hydra.sweeper.n_trials=5",
              "hydra.sweeper.pruner=none",
              "optimizer.lr=interval(0.01, 0.05)", f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    sbatch = ["sbatch", "--parsable", "--array=0-2", "--cpus-per-task=1", "--mem=1G", f"--chdir={ROOT}",
              f"--output={tmp_path}/worker_%a.out", "--wrap", shlex.join(search)]  # fmt: skip
    array = subprocess.run(sbatch, env=slurm.env, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    deadline = time.monotonic() + 600
    while subprocess.run(["squeue", "-h", "-j", array], env=slurm.env, capture_output=True, text=True,
                         timeout=30).stdout.strip():  # fmt: skip
        assert time.monotonic() < deadline, "the array's workers did not end within 600 s"
        time.sleep(1)
    shown = subprocess.run(["scontrol", "show", "job", array], env=slurm.env, capture_output=True, text=True,
                           timeout=30)  # fmt: skip
    outs = "\n".join(p.read_text()[-2000:] for p in sorted(tmp_path.glob("worker_*.out")))
    assert shown.stdout.count("ExitCode=0:0") == 3, shown.stdout + outs
    study = optuna.load_study(study_name="array", storage=JournalStorage(JournalFileBackend(str(journal))))
    states = [t.state.name for t in study.trials]
    assert set(states) == {"COMPLETE"} and 5 <= len(states) <= 6, states  # two workers at a time: at most 1 more
    jobs = job_metrics(sweep_dir)
    assert sorted(jobs, key=int) == [str(n) for n in range(len(states))]
    tasks = {jobs[j]["environment"]["SLURM_ARRAY_TASK_ID"] for j in jobs}
    assert len(tasks) >= 2 and {jobs[j]["environment"]["SLURM_ARRAY_JOB_ID"] for j in jobs} == {array}


def test_a_requeued_job_saves_its_state_and_finishes_from_where_it_stopped(slurm, tmp_path):
    """`scontrol requeue` (what preemption does): SLURM sends SIGTERM, the job saves its state
    and records the interrupt; SLURM starts it again in the same dir, where it resumes from its
    last checkpoint, ends as a completed run, and keeps the interrupted attempt's record. About a
    minute: a job trained, requeued and trained on."""
    sweep_dir = tmp_path / "requeue"
    cmd = [sys.executable, "train.py", "-m", *ON_NODE, *SMALL, "trainer.max_epochs=40", "~callbacks.early_stopping",
           f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    job_dir = sweep_dir / "0"
    with open(tmp_path / "launcher.log", "w") as log, started(cmd, cwd=ROOT, env=slurm.env, stdout=log,
                                                              stderr=subprocess.STDOUT) as (launcher,):  # fmt: skip
        deadline = time.monotonic() + 120
        while not (job_dir / "checkpoints" / "last.ckpt").exists():  # an epoch done: requeue it now
            assert time.monotonic() < deadline and launcher.poll() is None, "the job never saved a checkpoint"
            time.sleep(0.2)
        squeue = subprocess.run(["squeue", "-h", "-o", "%A"], env=slurm.env, capture_output=True, text=True, timeout=30)
        subprocess.run(["scontrol", "requeue", *squeue.stdout.split()], env=slurm.env, check=True, timeout=30)
        # The job's own record, not a fixed budget: on a loaded machine the second attempt takes longer.
        deadline = time.monotonic() + 900
        while not finished(job_dir) and launcher.poll() is None:
            assert time.monotonic() < deadline, "the requeued job did not finish within 900 s"
            time.sleep(0.5)
        launcher.wait(timeout=120)  # it writes the report once SLURM says the job ended
    assert launcher.returncode == 0, (tmp_path / "launcher.log").read_text()[-3000:]
    before = json.loads((job_dir / "metrics_before_restart_1.json").read_text())
    assert before["status"] == "interrupted" and before["signal"] == "SIGTERM" and before["epochs_completed"] >= 1
    after = json.loads((job_dir / "metrics.json").read_text())
    assert after["status"] == "completed" and after["epochs"] == 40
    assert after["resumed_from"] == str(job_dir / "checkpoints" / "last.ckpt")
    assert after["environment"]["SLURM_RESTART_COUNT"] == "1"
