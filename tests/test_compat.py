"""Tripwires for litlab.compat: each fails loudly when the upstream behaviour it relies on changes."""

import contextlib
import importlib.machinery
import inspect
import json
import os
import subprocess
import sys

import lightning
import pandas as pd
import pytest
import torch
from lightning.fabric.plugins.environments import LightningEnvironment
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies.launchers import subprocess_script
from torch.utils.data import DataLoader, TensorDataset

import litlab.run.build
import litlab.run.train
from litlab import compat
from litlab.checkpoints.store import ENTRY
from litlab.run.train import train
from tests.helpers.config import ROOT
from tests.helpers.processes import started


def test_lightning_still_sets_the_hook_name_we_make_cheap(make_cfg):
    reached_module = []

    class Recorded(torch.nn.Module):  # what reaches nn.Module.__setattr__, the slow path
        def __setattr__(self, name, value):
            reached_module.append(name)
            super().__setattr__(name, value)

    class Spy(compat.CheapHookName, Recorded):
        pass

    spy = Spy()
    reached_module.clear()
    spy._current_fx_name = "training_step"
    spy.other = 1
    assert spy.__dict__["_current_fx_name"] == "training_step" and reached_module == ["other"]
    # litlab's models, as a run builds them, take the fast path:
    cfg = make_cfg("trainer.max_epochs=1", "callbacks=none", "logger=none")
    dm = litlab.run.build.build_datamodule(cfg)
    model = litlab.run.build.build_model(cfg, dm)
    assert type(model).__setattr__ is compat.CheapHookName.__setattr__
    # Lightning still sets the attribute of that name around its hooks (else the override saves nothing):
    hooked = []

    class Watched(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)

        def __setattr__(self, name, value):
            if name == "_current_fx_name" and value:
                hooked.append(value)
            super().__setattr__(name, value)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    trainer = lightning.Trainer(
        max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(Watched(), DataLoader(TensorDataset(torch.zeros(4, 1)), batch_size=1))
    assert hooked.count("training_step") == 2


NVML_PROBE = """import os
os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
import lightning
from litlab import compat
imported = os.environ.get(compat.NVML_CHECK)
compat.allow_fast_cuda_checks()
print(repr((imported, os.environ.get(compat.NVML_CHECK))))"""


@pytest.mark.slow  # a new process importing Lightning: ~6 s
def test_importing_lightning_still_sets_the_nvml_check():
    """In a fresh process, importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (else
    allow_fast_cuda_checks has nothing to undo), and compat undoes it."""
    env = {k: v for k, v in os.environ.items() if k != compat.NVML_CHECK}
    out = subprocess.run([sys.executable, "-c", NVML_PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=180)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "('1', None)", out.stdout[-3000:]


def test_a_run_starts_without_the_nvml_check_lightning_set(make_cfg, monkeypatch):
    monkeypatch.setenv(compat.NVML_CHECK, "1")  # as importing Lightning leaves it
    litlab.run.train.start_run(make_cfg())
    assert compat.NVML_CHECK not in os.environ


# What a process reports of its rank: Lightning's rank_zero_only.rank, and litlab's view of it.
# It also reports whether importing Lightning set PYTORCH_NVML_BASED_CUDA_CHECK (compat.allow_fast_cuda_checks).
RANK_PROBE = """import json, os
os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
from lightning.pytorch.utilities import rank_zero_only
from litlab import compat
nvml = os.environ.get(compat.NVML_CHECK)
print(json.dumps([type(rank_zero_only.rank).__name__, compat.global_rank(), compat.is_ddp_child(), nvml]))"""


@pytest.mark.e2e  # two processes importing Lightning
@pytest.mark.slow  # two new processes, each importing Lightning: ~12 s
def test_rank_zero_only_still_carries_the_rank():
    """Lightning sets rank_zero_only.rank from the launcher's environment when it is imported, and
    global_rank() reads it: this process is rank 0, and a process started as rank 1 is rank 1,
    by Lightning's launcher (LOCAL_RANK) or by torchrun on a second node (RANK; local rank 0)."""
    assert isinstance(lightning.pytorch.utilities.rank_zero_only.rank, int) and compat.global_rank() == 0
    launchers = {
        "Lightning's launcher": {"LOCAL_RANK": "1"},
        "torchrun, second node": {"RANK": "1", "LOCAL_RANK": "0", "WORLD_SIZE": "2"},
    }
    ours = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "WORLD_SIZE")  # launchers set them
    clean = {k: v for k, v in os.environ.items() if k not in ours}
    probe = [sys.executable, "-c", RANK_PROBE]
    with contextlib.ExitStack() as stack:  # all at once: each spends its seconds importing Lightning
        procs = {
            name: stack.enter_context(started(probe, cwd=ROOT, env={**clean, **env}, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT))[0]
            for name, env in launchers.items()
        }  # fmt: skip
        for name, proc in procs.items():
            out = proc.communicate(timeout=180)[0].decode()
            assert proc.returncode == 0, f"{name}: {out[-3000:]}"
            assert json.loads(out.strip().splitlines()[-1]) == ["int", 1, True, "1"], f"{name}: {out[-3000:]}"


CHILD = """import os, sys
open(sys.argv[1], "w").write(os.environ.get("LOCAL_RANK", "unset"))
"""


@pytest.mark.parametrize("started_as", ["script", "module"])
def test_lightnings_ddp_children_still_get_local_rank(tmp_path, monkeypatch, started_as):
    """Lightning's launcher starts rank 1 as the same command line with LOCAL_RANK=1, which
    compat.is_ddp_child reads: here the command line is a child that writes what it got, started
    as a script (`python child.py`, as litlab's console script is) or as a module (`python -m child`)."""
    assert not compat.is_ddp_child()
    (tmp_path / "child.py").write_text(CHILD)
    # The launcher rebuilds the command line from sys.argv and __main__.__spec__ (None for a script,
    # the module's spec under -m): set both to the child's, else the child would be pytest itself
    # (`python -m pytest`), which never writes the file.
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "child.py"), str(tmp_path / "rank1.txt")])  # also under -m
    if started_as == "script":
        monkeypatch.setattr(sys.modules["__main__"], "__spec__", None)
    else:
        spec = importlib.machinery.ModuleSpec("child", None, origin=str(tmp_path / "child.py"))
        monkeypatch.setattr(sys.modules["__main__"], "__spec__", spec)
        monkeypatch.setenv("PYTHONPATH", str(tmp_path), prepend=os.pathsep)  # where the child finds `child`
    saved = dict(os.environ)  # the launcher also sets MASTER_ADDR/PORT etc. in this process
    try:
        launcher = subprocess_script._SubprocessScriptLauncher(LightningEnvironment(), num_processes=2, num_nodes=1)
        launcher._call_children_scripts()
        for child in launcher.procs:
            child.wait(timeout=60)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    command = launcher.procs[0].args
    assert command[1:-1] == ([str(tmp_path / "child.py")] if started_as == "script" else ["-m", "child"]), command
    assert (tmp_path / "rank1.txt").read_text() == "1"


def test_checkpoints_still_keep_the_datamodule_state_under_its_class_name(make_cfg, tmp_path):
    ckpt = torch.load(train(make_cfg("trainer.max_epochs=1"))["best_ckpt"], weights_only=True)
    state = compat.datamodule_state(ckpt, ckpt[ENTRY]["datamodule_class"])
    assert ckpt[ENTRY]["datamodule_class"] == "litlab.data.sklearn_sets.DigitsDataModule"
    assert {"scaler", "fingerprint", "spec"} <= set(state)


def test_checkpoints_still_count_the_fit_loop_s_finished_epochs(make_cfg, tmp_path):
    train(make_cfg("trainer.max_epochs=2"))
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert compat.completed_epochs(ckpt) == 2
    assert compat.completed_epochs({"state_dict": {}}) is None  # not a checkpoint of a fit


def test_model_checkpoint_state_still_has_the_keys_we_move(tmp_path):
    state = ModelCheckpoint(dirpath=str(tmp_path), monitor="val/loss").state_dict()
    moved = compat.best_checkpoint_moved({**state, "best_model_score": torch.tensor(0.5)}, tmp_path / "x" / "e.ckpt")
    assert set(moved) == set(state)  # no key of ours that Lightning does not know
    restored = ModelCheckpoint(dirpath=str(tmp_path / "x"), monitor="val/loss")
    restored.load_state_dict(moved)
    assert restored.best_model_path == str(tmp_path / "x" / "e.ckpt") and float(restored.best_model_score) == 0.5


class CountsItsOwnSteps(lightning.LightningModule):
    """Manual optimization over Lightning's dataloader_iter: each call takes one batch and counts
    2 optimizer steps and 2 logged steps through compat, as model.steps_per_call does."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.layer = torch.nn.Linear(1, 1)
        self.used_up: list[bool] = []
        self.logged_at: list[int] = []

    def training_step(self, dataloader_iter):
        self.used_up.append(compat.batches_used_up(dataloader_iter))
        next(dataloader_iter)
        compat.count_optimizer_steps(self.trainer, 2)
        compat.count_logged_steps(self.trainer, 2)
        self.used_up.append(compat.batches_used_up(dataloader_iter))
        self.log("x", 1.0, batch_size=1)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_manual_optimization_still_counts_its_steps_where_steps_per_call_adds_them(tmp_path):
    trainer = lightning.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    loop = trainer.fit_loop.epoch_loop
    compat.count_optimizer_steps(trainer, 3)
    compat.count_logged_steps(trainer, 2)
    assert loop.manual_optimization.optim_step_progress.total.completed == 3 and loop._batches_that_stepped == 2
    # In a real fit: global_step (max_steps, checkpoints) and the loggers' step follow the counts,
    # a training_step naming `dataloader_iter` gets the iterator, whose done flag marks the last batch.
    logger = CSVLogger(tmp_path, name="", version="")
    module = CountsItsOwnSteps()
    fit = lightning.Trainer(
        max_epochs=1, logger=logger, log_every_n_steps=1, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    data = DataLoader(TensorDataset(torch.zeros(3, 1)), batch_size=1)
    fit.fit(module, train_dataloaders=data)
    assert fit.global_step == 3 * 2
    assert module.used_up == [False, False, False, False, False, True]
    logged = pd.read_csv(tmp_path / "metrics.csv")["step"].tolist()
    assert logged == [2, 5, 8]  # one logged step per call from Lightning, two more from compat each call


def test_basic_sweeper_still_gives_its_params_as_overrides():
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    sweeper = BasicSweeper(max_batch_size=None, params={"optimizer.lr": "0.1,0.01", "seed": "1"})
    assert compat.sweep_params(sweeper) == ["optimizer.lr=0.1,0.01", "seed=1"]


def test_optuna_still_beats_a_trial_s_heartbeat_in_a_thread_we_can_start(tmp_path):
    """A RUNNING trial whose heartbeat compat.heartbeat beats is not stale past the grace period; one
    without is failed, and queued again with its parameters."""
    import time

    import optuna

    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path}/optuna.db", heartbeat_interval=1, grace_period=2,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
    )  # fmt: skip
    study = optuna.create_study(storage=storage)
    beating, silent = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), study.ask()
    with compat.heartbeat(study, silent):
        pass  # one heartbeat, then none: its worker died
    with compat.heartbeat(study, beating):
        time.sleep(3.5)
        optuna.storages.fail_stale_trials(study)
        states = [t.state.name for t in study.get_trials()]
    assert states == ["RUNNING", "FAIL", "WAITING"]  # the retry of the silent trial, queued
    retry = study.get_trials()[2]
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == 1


def test_hydra_s_basic_launcher_is_still_the_class_compat_names():
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher
    from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

    assert compat.runs_jobs_in_this_process(BasicLauncher())
    assert not compat.runs_jobs_in_this_process(JoblibLauncher())


def test_the_trainer_still_keeps_overfit_batches():
    assert compat.overfit_batches(lightning.Trainer(overfit_batches=2, logger=False)) == 2
    assert compat.overfit_batches(lightning.Trainer(logger=False)) == 0


def test_lightning_still_wraps_each_hook_in_a_profiler_context(make_cfg):
    from lightning.pytorch.profilers import PassThroughProfiler, Profiler, SimpleProfiler

    calls = []

    class Counting(compat.NoProfiler):
        def profile(self, action_name):
            calls.append(action_name)
            return super().profile(action_name)

    cfg = make_cfg("trainer.max_epochs=1", "++trainer.limit_train_batches=4", "callbacks=none", "logger=none")
    trainer = litlab.run.build.build_trainer(cfg, extra_callbacks=[])
    assert isinstance(trainer.profiler, compat.NoProfiler)  # what train.py gives Lightning when none is asked for
    trainer.profiler = Counting()
    dm = litlab.run.build.build_datamodule(cfg)
    trainer.fit(litlab.run.build.build_model(cfg, dm), datamodule=dm)
    per_step = sum("training_step" in name for name in calls)
    assert per_step == 4 and len(calls) > 10 * per_step  # many contexts per step: why one shared one pays
    # Lightning's own default still makes a new generator-based context per call (else drop NoProfiler):
    assert PassThroughProfiler.profile is Profiler.profile and inspect.isgeneratorfunction(
        inspect.unwrap(Profiler.profile)
    )
    with compat.NoProfiler().profile("x") as entered, compat.NoProfiler().profile("y"):
        assert entered is None
    asked = litlab.run.build.build_trainer(make_cfg("debug=profiler", "monitor.mode=min"), extra_callbacks=[])
    assert isinstance(asked.profiler, SimpleProfiler)  # debug=profiler: Lightning's SimpleProfiler (HookProfiler)


def test_lightnings_range_test_still_records_its_biased_moving_average(tmp_path):
    """compat.range_test_losses gets each step's loss back from what Tuner.lr_find records; a
    change in Lightning's averaging (beta, or its bias correction's step count) fails here."""
    from lightning.pytorch.tuner import Tuner

    steps = [2.3, 2.1, 2.6, 1.0, 0.4, 3.0, 1.7, 0.9, 1.2, 2.2, 0.5, 1.1]

    class KnownLosses(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def training_step(self, batch, batch_idx):
            return self.w * 0 + steps[int(batch[0])]  # the loss of step i is steps[i]

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = lightning.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, max_epochs=-1, default_root_dir=tmp_path)  # fmt: skip
    loader = DataLoader(torch.arange(len(steps)), batch_size=1)
    found = Tuner(trainer).lr_find(KnownLosses(), train_dataloaders=loader, num_training=len(steps),
                                   early_stop_threshold=None, update_attr=False)  # fmt: skip
    assert found is not None and len(found.results["loss"]) == len(steps)
    assert found.results["loss"][0] == pytest.approx(steps[0] * 0.02 / (1 - 0.98**2))  # the first point reads ~half
    assert compat.range_test_losses(found.results["loss"]) == pytest.approx(steps, abs=1e-6)  # float32 losses
