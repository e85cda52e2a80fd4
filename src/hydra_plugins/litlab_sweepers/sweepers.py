"""Hydra sweepers for litlab (Hydra finds plugins only in the hydra_plugins package).

`KeepGoingSweeper` (hydra/sweeper=keep_going, the default): Hydra's grid sweeper, except that
a failed job does not stop the sweep. `ResumableOptunaSweeper` (the hparams_search presets):
hydra-optuna-sweeper, plus resuming a study from its storage and writing best.yaml.
In both, failures reach the exit code through litlab.sweep_callback.SweepEnd, which runs
after the sweep and first writes the report.
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # see litlab.compat
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import DictConfig, OmegaConf

from litlab.errors import UserError

if TYPE_CHECKING:
    import optuna

# Hydra imports every plugin module to discover plugins, even for `--help`: optuna and
# Lightning (through litlab.compat) are imported only once an Optuna sweep is set up.

log = logging.getLogger(__name__)


def next_job_num(sweep_dir: Path) -> int:
    """One past the highest numbered job dir already in `sweep_dir` (0 for a new sweep)."""
    nums = [int(p.name) for p in sweep_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(nums, default=-1) + 1


class KeepGoingSweeper(BasicSweeper):
    """Hydra's basic sweeper (grid over the `-m` overrides), except that every job runs:
    a failed job is logged, and the sweep goes on with the next (BasicSweeper raises at
    the first failed job of a batch, which also skips the end-of-sweep callbacks)."""

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        self.overrides = self.split_arguments(overrides, self.max_batch_size)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns, job_idx = [], 0
        while not self.is_done():
            batch = self.get_job_batch()
            self.validate_batch_is_legal(batch)  # a typo in an override fails here, before any job
            results = self.launcher.launch(batch, initial_job_idx=job_idx)
            for job, result in zip(batch, results, strict=True):
                try:
                    _ = result.return_value  # raises the job's exception if it failed
                except Exception as e:
                    log.error("job [%s] failed: %s: %s", " ".join(job), type(e).__name__, e)
            job_idx += len(batch)
            returns.append(results)
        return returns


class ResumableOptunaSweeper(OptunaSweeper):
    """hydra-optuna-sweeper, made to resume and to report its best trial.

    - Re-running with the same sweep dir (and storage) continues the study: trials left
      running by an interrupted run are marked failed, only the trials still missing of
      `n_trials` are run, and job dirs are numbered on after the existing ones.
    - A trial whose job raised (litlab records NaN/inf metrics as errors) is a failed trial;
      set `max_failure_rate: 1.0` to go on past them.
    - best.yaml in the sweep dir: the best value, its parameters as overrides, trial counts.
    """

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        from litlab.compat import optuna_directions

        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        impl = self.sweeper
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)  # the SQLite file lives there, before any job
        impl.job_idx = next_job_num(sweep_dir)
        self.config, self.sweep_dir = config, sweep_dir
        mode = config.get("monitor", {}).get("mode")
        directions = optuna_directions(impl)
        if mode in ("min", "max") and directions != [f"{mode}imize"]:
            raise UserError(
                f"hydra.sweeper.direction={directions} does not match monitor.mode={mode!r} "
                f"({config.monitor.metric}); set hydra.sweeper.direction={mode}imize"
            )

    def sweep(self, arguments: list[str]) -> None:
        import optuna
        from optuna.trial import TrialState

        impl = self.sweeper
        assert self.config is not None  # Hydra calls setup() first
        existing = {s.study_name for s in optuna.get_all_study_summaries(impl.storage)} if impl.storage else set()
        if impl.study_name in existing:
            study = self._study()
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                log.warning("trial %d was left running by an interrupted sweep: marking it failed", t.number)
                study.tell(t.number, state=TrialState.FAIL)
            done = len(study.trials)
            sampler = self.config.hydra.sweeper.sampler
            if sampler.get("seed") is not None and not sampler.get("_partial_"):
                # A seeded sampler restarts its random stream in a new process: without a new seed
                # the resumed study would propose its first trials over again.
                impl.sampler = instantiate(sampler, seed=sampler.seed + done)
            log.info("resuming study %r: %d trial(s) done, %d to go", impl.study_name, done, impl.n_trials - done)
            impl.n_trials = max(impl.n_trials - done, 0)
        try:
            super().sweep(arguments)
        except ValueError:
            # optuna's best_trial raises this when trials ran but none completed: leave the outcome
            # to the report; any other ValueError (a bad search space...) is the user's to see.
            trials = self._study().trials if impl.storage else []
            if not trials or any(t.state == TrialState.COMPLETE for t in trials):
                raise
            log.error("no trial completed; see %s and the report", self.sweep_dir / "sweep.log")
            return
        self._write_best()

    def _study(self) -> "optuna.Study":
        import optuna

        assert self.sweeper.storage is not None  # only studies with storage are reloaded
        return optuna.load_study(study_name=self.sweeper.study_name, storage=self.sweeper.storage)

    def _write_best(self) -> None:
        from optuna.trial import TrialState

        if not self.sweeper.storage or self.config is None:
            return
        study = self._study()
        states = [t.state for t in study.trials]
        complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
        if not complete:
            return
        best = study.best_trial
        command = {**best.params, **best.user_attrs}  # searched and fixed: the whole command line
        best_yaml = {
            "metric": self.config.get("monitor", {}).get("metric"),
            "direction": study.direction.name.lower(),
            "value": best.value,
            "trial": best.number,
            "params": best.params,
            "overrides": [f"{k}={v}" for k, v in command.items()],
            "trials": {"total": len(states), "complete": len(complete), "failed": states.count(TrialState.FAIL)},
            "study_name": study.study_name,
            "storage": self.sweeper.storage,
        }
        OmegaConf.save(OmegaConf.create(best_yaml), self.sweep_dir / "best.yaml")
        log.info("best %s = %s with %s (written to best.yaml)", best_yaml["metric"], best.value, best_yaml["overrides"])
