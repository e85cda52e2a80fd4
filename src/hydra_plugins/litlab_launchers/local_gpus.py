"""`hydra/launcher=local_gpus`: the jobs of a sweep on this machine's GPUs, one job per GPU at a
time, the rest queued.

N worker processes, one per GPU; each takes its GPU when it starts (CUDA_VISIBLE_DEVICES, set
before torch is imported there) and keeps it. A job runs on its worker's GPU, so no two running
jobs share one, and a worker takes the next queued job when its job ends. The workers serve every
launch of the sweep, also launches made at once from several threads (the Optuna sweeper's slots). Why not an existing
launcher: submitit's local executor gives every job the same GPUs and starts all jobs at once,
and joblib cannot give its workers an initializer.
"""

import functools
import logging
import multiprocessing as mp
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cloudpickle
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict
from typing_extensions import override

from litlab.errors import UserError, exit_on_user_error
from litlab.values import is_int

log = logging.getLogger(__name__)


def take_gpu(free: "mp.Queue[str]") -> None:
    """A worker's initializer: this process and the jobs it runs see only the GPU it takes."""
    os.environ["CUDA_VISIBLE_DEVICES"] = free.get(timeout=60)


def run_pickled(job: bytes) -> JobReturn:
    # The task function is the entry point's `main`, defined in __main__: only cloudpickle
    # carries it to another process.
    return cloudpickle.loads(job)()


def execute_job(
    idx: int,
    overrides: Sequence[str],
    hydra_context: HydraContext,
    config: DictConfig,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
) -> JobReturn:
    """One job in a worker, as Hydra's own launchers run it: the sweep config of its overrides."""
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    return run_job(
        hydra_context=hydra_context,
        config=sweep_config,
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


def gpu_ids(gpus: list[int] | None) -> list[str]:
    """The GPUs to use, as CUDA_VISIBLE_DEVICES values: `gpus`, or every GPU torch sees."""
    if gpus is None:
        import torch

        gpus = list(range(torch.cuda.device_count()))
        if not gpus:
            raise UserError("hydra/launcher=local_gpus found no GPU here; list them with hydra.launcher.gpus=[0,1]")
    if not gpus or not all(is_int(g) and g >= 0 for g in gpus):
        raise UserError(f"hydra.launcher.gpus={gpus} is invalid: give GPU indices, e.g. hydra.launcher.gpus=[0,1]")
    return [str(g) for g in gpus]


class LocalGpusLauncher(Launcher):
    """Runs a sweep's jobs on `gpus` (indices; None: every GPU torch sees), one job per GPU at once."""

    def __init__(self, gpus: list[int] | None = None) -> None:
        self.gpus = gpus
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        self.pool: ProcessPoolExecutor | None = None  # started by the first launch
        self.starting = threading.Lock()

    @override
    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        show = bool(config.get("extras", {}).get("traceback", False))
        self.gpu_ids = exit_on_user_error(lambda: gpu_ids(self.gpus), show)  # before any job

    @override
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        # Hydra calls setup() first
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        gpus = self.gpu_ids
        log.info("local_gpus: %d jobs on GPUs %s, %d at a time", len(job_overrides), ",".join(gpus), len(gpus))
        for idx, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", initial_job_idx + idx, " ".join(filter_overrides(overrides)))
        state = Singleton.get_state()
        jobs = [
            functools.partial(
                execute_job,
                initial_job_idx + idx,
                overrides,
                self.hydra_context,
                self.config,
                self.task_function,
                state,
            )  # fmt: skip
            for idx, overrides in enumerate(job_overrides)
        ]
        pool = self.workers(gpus)
        futures = [pool.submit(run_pickled, cloudpickle.dumps(job)) for job in jobs]
        return [f.result() for f in futures]

    def workers(self, gpus: list[str]) -> ProcessPoolExecutor:
        """The worker processes, one per GPU, started once (Python joins them as it exits)."""
        with self.starting:
            if self.pool is None:
                context = mp.get_context("spawn")  # fresh processes: no CUDA state inherited
                free: mp.Queue[str] = context.Queue()
                for gpu in gpus:
                    free.put(gpu)
                self.pool = ProcessPoolExecutor(len(gpus), mp_context=context, initializer=take_gpu, initargs=(free,))
            return self.pool
