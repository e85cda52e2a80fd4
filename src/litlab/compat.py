"""Every use of a private or fragile behaviour of Lightning or Hydra, each with why it is needed.

Checked against lightning 2.6.6 and hydra-core 1.3.8. tests/test_compat.py fails loudly when
one of them changes upstream. One exception: hydra_plugins/litlab_sweepers/sweepers.py subclasses
Hydra's BasicSweeper (hydra._internal) itself. It must import it there: Hydra re-imports its core
plugins while it scans for plugins, and a base class imported earlier, here, would be another
class object than the one Hydra then instantiates. The Optuna sweeper's one private use of Optuna
(a trial's heartbeat) is here too, checked against optuna 5.1.
"""

import os
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning.pytorch.profilers import Profiler
from lightning.pytorch.utilities import rank_zero_only
from typing_extensions import override

if TYPE_CHECKING:
    from optuna.storages._heartbeat import BaseHeartbeatThread

NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


class CheapHookName:
    """Mixin for a LightningModule. Lightning sets `_current_fx_name` on the module around every
    hook call, about 40 times a step; nn.Module.__setattr__ first looks for parameters, buffers
    and submodules of that name, ~20% of Lightning's per-step cost for a small model."""

    @override
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)


class NoProfiler(Profiler):
    """The Trainer's profiler when none is asked for. Lightning wraps each hook call, about 45 a
    training step, in `with trainer.profiler.profile(name)`; its default PassThroughProfiler makes
    a fresh generator-based context manager each time, a measurable part of a small model's step
    on CPU. This one hands back the same do-nothing context every time."""

    _null = nullcontext()

    @override
    def start(self, action_name: str) -> None:
        pass

    @override
    def stop(self, action_name: str) -> None:
        pass

    @override
    def profile(self, action_name: str) -> nullcontext:  # type: ignore[override]
        return self._null


def allow_fast_cuda_checks() -> None:
    """Undo the PYTORCH_NVML_BASED_CUDA_CHECK=1 that importing Lightning sets (so that a forked
    process does not inherit an initialized CUDA). With it each torch.cuda.is_available()
    re-opens NVML, about 0.3 ms, and torch's optimizers ask on every step. litlab never forks
    after touching CUDA: DDP starts fresh processes (Lightning's subprocess launcher)."""
    os.environ.pop(NVML_CHECK, None)


def global_rank() -> int:
    """This process's rank under DDP (0 otherwise), before or without a Trainer: Lightning's
    `rank_zero_only.rank`, which it sets from the launcher's environment."""
    return int(getattr(rank_zero_only, "rank", 0))


def is_ddp_child() -> bool:
    """A process of rank > 0, which joins rank 0's run dir: started by Lightning's subprocess
    launcher (it re-runs the command line with the same hydra.run.dir and sets LOCAL_RANK), by
    torchrun (RANK) or by srun (SLURM_PROCID), the variables Lightning reads its rank from."""
    return any(os.environ.get(k, "0") != "0" for k in ("LOCAL_RANK", "RANK", "SLURM_PROCID"))


def started_together() -> bool:
    """All ranks started at once by torchrun (WORLD_SIZE) or srun (SLURM_NTASKS), as opposed to
    rank 0 starting the others (Lightning's launcher): then rank 0 may find that another rank
    already wrote Hydra's files into the shared run dir."""
    return any(int(os.environ.get(k, "1") or 1) > 1 for k in ("WORLD_SIZE", "SLURM_NTASKS"))


def datamodule_state(checkpoint: dict, datamodule_class: str) -> dict:
    """The DataModule's `state_dict()` in a Lightning checkpoint: stored under the class's
    `__qualname__` (the last part of its dotted name, for litlab's top-level classes)."""
    return checkpoint.get(datamodule_class.rsplit(".", 1)[1], {})


def completed_epochs(checkpoint: dict) -> int | None:
    """The epochs a Lightning checkpoint's fit loop had trained (its progress tracking, saved under
    `loops`: `processed`, since an epoch's end checkpoint is written before the epoch counts as
    `completed`); None where the checkpoint has no such record."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError, ValueError):
        return None


def best_checkpoint_moved(state_dict: dict, copy: Path) -> dict:
    """ModelCheckpoint's `state_dict()` (save_top_k=1) with the best model at `copy`, in a new
    dirpath: what its `load_state_dict` restores in full only when the dirpath is unchanged."""
    path, score = str(copy), state_dict["best_model_score"]
    return {
        **state_dict,
        "dirpath": str(copy.parent),
        "best_model_path": path,
        "kth_best_model_path": path,
        "best_k_models": {path: score},
        "kth_value": score,
        "last_model_path": "",
    }


def count_optimizer_steps(trainer: Any, n: int) -> None:
    """Count `n` optimizer steps that `model.steps_per_call` took with the bare torch optimizer.
    Under manual optimization Lightning counts a step (trainer.global_step, which max_steps,
    checkpoints and resume read) only when its LightningOptimizer wrapper steps, and that
    wrapper's hooks cost about as much as a small model's step."""
    trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress.increment_by(n)


def count_logged_steps(trainer: Any, n: int) -> None:
    """Advance the step loggers put on the x-axis by `n` more than Lightning's one per call,
    so that curves of runs with any `model.steps_per_call` share the optimizer-step axis."""
    trainer.fit_loop.epoch_loop._batches_that_stepped += n


def batches_used_up(dataloader_iter: Any) -> bool:
    """Whether the `dataloader_iter` Lightning hands a `training_step(dataloader_iter)` has given its
    epoch's last batch: its `done` flag (Lightning's private _DataFetcherWrapper). Asked before
    taking a batch, so that K steps of a call never reach into a batch that is not there."""
    return bool(dataloader_iter.done)


def overfit_batches(trainer: Any) -> float:
    """`Trainer(overfit_batches=)` as the Trainer keeps it: an attribute its type does not declare."""
    return float(trainer.overfit_batches)


def sweep_params(sweeper: Any) -> list[str]:
    """`hydra.sweeper.params` of Hydra's BasicSweeper as `key=value` overrides (its private
    `_parse_config`), which the grid sweeps together with the command line's."""
    return list(sweeper._parse_config())


def heartbeat(study: Any, trial: Any) -> "BaseHeartbeatThread":
    """Optuna's heartbeat of `trial` while the block runs, in a thread of this process (a no-op
    for a storage without heartbeats). Optuna starts it only inside Study.optimize (its private
    `_heartbeat.get_heartbeat_thread`, given the private `Trial._trial_id` and `Study._storage`);
    an ask-and-tell worker whose trial runs in a launcher's job must start it itself."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    return get_heartbeat_thread(trial._trial_id, study._storage)


BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def runs_jobs_in_this_process(launcher: Any) -> bool:
    """Hydra's basic launcher (a private class) runs each job in the calling thread: the Optuna
    sweeper may then launch only one job at a time, from its main thread (signal handlers). By
    name: Hydra re-imports its core plugins as it scans them (see above)."""
    return f"{type(launcher).__module__}.{type(launcher).__qualname__}" == BASIC_LAUNCHER


# Lightning's range test (Tuner.lr_find, its private _LRCallback) records an exponential moving
# average of the loss, not the loss: beta 0.98, "bias-corrected" by 1 - beta**(global_step + 1)
# with global_step already counting the step just taken, so its first points read about half the
# loss. The per-step losses are recovered from it and smoothed without lag (litlab.run.lr_curve).
RANGE_TEST_BETA = 0.98


def range_test_losses(recorded: list[float], first_step: int = 1) -> list[float]:
    """The per-step losses behind the range test's `recorded` averages; `first_step` is the
    trainer's global step after the first of them. A NaN (a batch that returned no loss, so took
    no step) stays NaN and leaves the average untouched, as in Lightning."""
    beta, average, step, raw = RANGE_TEST_BETA, 0.0, first_step, []
    for smoothed in recorded:
        if smoothed != smoothed:  # NaN
            raw.append(smoothed)
            continue
        new_average = smoothed * (1 - beta ** (step + 1))
        raw.append((new_average - beta * average) / (1 - beta))
        average, step = new_average, step + 1
    return raw
