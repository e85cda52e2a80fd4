"""An Optuna search as a Hydra sweeper (`hydra/sweeper=litlab_optuna`, the hparams_search presets),
on Optuna's public ask-and-tell API (optuna >= 5.1).

The search space takes hydra-optuna-sweeper's syntax, in `hydra.sweeper.params` or on the command
line: `interval(a, b)`, `tag(log, interval(a, b))`, `choice(...)`, `range(...)`. A study lives in
its storage (default: SQLite in the sweep dir); running the same command again resumes it, and
the same command started N times (N processes, a SLURM job array, several machines sharing the
storage and the sweep dir) is N workers of one search. Each worker asks for its next trial as
soon as its last one ends, until `n_trials` trials of the study have finished (complete or
pruned), counted over every worker: a failed trial is replaced, up to `n_trials` failures in one
worker's run; other workers' trials still running at that moment finish too (at most one each).
Job dirs are named by trial number. In a storage with heartbeats (RDB: SQLite, PostgreSQL,
MySQL) a trial whose worker died (kill -9, a lost node) is failed once its heartbeat is
`grace_period` s old and run again with the same parameters by a live worker. A trial whose job
fails is a failed trial and the search goes on. At the end, best.yaml in the sweep dir holds the
best value and the overrides that give it.

Each job gets its trial as config values (`optuna.*`, see litlab.sweeps.pruning): it reports its val
metric every epoch to the study, and `pruner` (none, median, hyperband, successive_halving) stops
the trials that fall behind; the job itself tells the study a trial is PRUNED.
"""

import functools
import logging
import math
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from typing_extensions import override

from litlab import files
from litlab.errors import UserError, exit_on_user_error
from litlab.hydra_job import parse_overrides
from litlab.sweeps.budget import Budget, finished_trials, run_in_threads
from litlab.sweeps.study import (
    check_counts,
    check_names,
    check_same_settings,
    importances,
    make_pruner,
    open_storage,
    unusable_storage,
    write_study_file,
)

from .search_space import as_overrides, as_text, distribution  # relative: hydra_plugins is a namespace package

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.trial import TrialState

# Hydra imports every plugin module to discover plugins, even for `--help`: optuna is imported
# only once a search starts.

log = logging.getLogger(__name__)


def check_job_dirs(sweep_dir: Path, study_name: str) -> None:
    """Job dirs are named by trial number: each one already in `sweep_dir` must be the trial of that
    number of this study (a dir another worker is just starting has no overrides yet)."""
    from litlab.sweeps.jobs import read_overrides  # reads run records: only once a search starts

    for job in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()):
        overrides = job / ".hydra" / "overrides.yaml"
        if not overrides.is_file():
            continue
        given = read_overrides(overrides)
        values = parse_overrides(given)
        if (values.get("optuna.study_name"), values.get("optuna.trial")) != (f"'{study_name}'", job.name):
            raise UserError(
                f"{job} is not trial {job.name} of study {study_name!r} (its overrides: {' '.join(given)}); "
                "give this search a new hydra.sweep.dir"
            )


class OptunaSweeper(Sweeper):
    """A worker of an Optuna search: runs trials, `n_jobs` at a time through Hydra's launcher, each
    asked of the study in `storage` as a slot frees, until `n_trials` have finished over every
    worker of the study (see the module docstring)."""

    def __init__(
        self,
        sampler: functools.partial | None = None,
        direction: str | list[str] = "auto",
        study_name: str | None = None,
        storage: str | None = None,
        n_trials: int = 20,
        n_jobs: int = 1,
        params: dict[str, str] | None = None,
        pruner: str = "none",
        pruner_args: dict[str, Any] | None = None,
        heartbeat_interval: int | None = 60,
        grace_period: int | None = None,
        max_retry: int = 3,
    ) -> None:
        self.sampler, self.study_name, self.storage = sampler, study_name, storage
        self.heartbeat_interval, self.grace_period, self.max_retry = heartbeat_interval, grace_period, max_retry
        self.pruner, self.pruner_args = pruner, dict(pruner_args or {})
        self.directions = [direction] if isinstance(direction, str) else list(direction)
        self.n_trials, self.n_jobs, self.params = n_trials, n_jobs, dict(params or {})

    @override
    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.sweep_dir = Path(config.hydra.sweep.dir)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)  # the SQLite file lives there, before any job
        self.show_traceback = bool(config.get("extras", {}).get("traceback", False))
        exit_on_user_error(lambda: self.check(config), self.show_traceback)

    def check(self, config: DictConfig) -> None:
        """The search's settings, before any trial: one line for a bad one (litlab.errors)."""
        if len(self.directions) == 1:
            self.directions = [self.objective_direction(self.directions[0], config.get("monitor", {}))]
        make_pruner(self.pruner, self.pruner_args)  # a bad name fails now
        check_names(self.storage, self.study_name)
        check_counts({"n_trials": self.n_trials, "n_jobs": self.n_jobs, "heartbeat_interval": self.heartbeat_interval,
                      "grace_period": self.grace_period, "max_retry": self.max_retry})  # fmt: skip
        if self.storage is None and self.pruner != "none":
            raise UserError(
                f"hydra.sweeper.pruner={self.pruner} needs a storage the jobs can report to, not "
                "hydra.sweeper.storage=null; e.g. hydra.sweeper.storage=sqlite:///optuna.db"
            )

    @staticmethod
    def objective_direction(direction: str, monitor: DictConfig) -> str:
        """'minimize' or 'maximize': the way the monitored metric is better, as the metric declares it
        (litlab.models.metrics, the source train.py resolves monitor.mode from). `auto` takes it; an
        explicit direction that contradicts it would search for the worst settings and is refused."""
        from litlab.models.metrics import checked_mode  # imports torchmetrics: only once a search starts

        metric = monitor.get("metric", "val/loss")
        wanted = f"{checked_mode(metric, monitor.get('mode', 'auto'), 'monitor.mode')}imize"
        if direction not in ("auto", wanted):
            raise UserError(
                f"hydra.sweeper.direction={direction} contradicts monitor.metric={metric}, which is better when "
                f"{'lower' if wanted == 'minimize' else 'higher'}: leave hydra.sweeper.direction=auto"
            )
        return wanted

    def search_space(self, arguments: list[str]) -> tuple[dict[str, "BaseDistribution"], list[str]]:
        """The distributions of `params` and of the sweep overrides in `arguments`; the other
        overrides, which every trial gets as they are. A value the command line fixes takes its key
        out of `params`' search (the command line wins); one it both searches and fixes is refused."""
        assert self.hydra_context is not None  # Hydra calls setup() first
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        configured = parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()])
        given = parser.parse_overrides(arguments)
        fixed = [o for o in given if not o.is_sweep_override()]
        searched = {o.get_key_element(): o for o in [*configured, *given] if o.is_sweep_override()}
        searched_here = {o.get_key_element() for o in given if o.is_sweep_override()}
        if both := next((o for o in fixed if o.get_key_element() in searched_here), None):
            raise UserError(
                f"{both.input_line}: the command line also searches {both.get_key_element()}; give it once, a value "
                "or a search space"
            )
        pinned = {o.get_key_element() for o in fixed}
        space = {key: distribution(o) for key, o in searched.items() if key not in pinned}
        return space, [str(o.input_line) for o in fixed]

    def study(self, storage: "str | optuna.storages.BaseStorage | None") -> "optuna.Study":
        """The study, new or loaded from `storage`, with the sampler set for the trials to come."""
        import optuna

        study = optuna.create_study(
            study_name=self.study_name, storage=storage, directions=self.directions,  # type: ignore[arg-type]
            pruner=make_pruner(self.pruner, self.pruner_args), load_if_exists=True,
        )  # fmt: skip
        metric = self.config.get("monitor", {}).get("metric") if self.config is not None else None
        if metric and len(self.directions) == 1 and study.metric_names is None:
            with warnings.catch_warnings():  # "experimental" since Optuna 3.2, unchanged since: not the user's
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([metric])  # optuna-dashboard labels its plots with it, not "Objective 0"
        if self.sampler is not None:
            seed = self.sampler.keywords.get("seed")
            # A seeded sampler restarts its random stream in a new process: without a new seed a
            # resumed study would propose its first trials over again. (Study.sampler is a public attribute.)
            offset = len(study.trials)
            study.sampler = self.sampler(**({"seed": seed + offset} if seed is not None else {}))
        return study

    @override
    def sweep(self, arguments: list[str]) -> None:
        from litlab.sweeps.lock import sweep_lock

        space, fixed = exit_on_user_error(lambda: self.search_space(arguments), self.show_traceback)
        with ExitStack() as held:
            # shared: the study's other workers may use this sweep dir too, a grid sweep may not
            exit_on_user_error(lambda: held.enter_context(sweep_lock(self.sweep_dir, shared=True)),
                               self.show_traceback)  # fmt: skip
            study = exit_on_user_error(self.opened_study, self.show_traceback)
            exit_on_user_error(lambda: check_same_settings(study, fixed), self.show_traceback)
            exit_on_user_error(lambda: check_job_dirs(self.sweep_dir, study.study_name), self.show_traceback)
            if self.storage is not None:  # a study in memory ends with this worker
                write_study_file(self.sweep_dir, study.study_name, self.storage)
            self.run_trials(study, space, fixed)

    def opened_study(self) -> "optuna.Study":
        """The study in `storage`; a storage that cannot be opened is a UserError naming it."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return self.study(open_storage(self.storage, self.heartbeat_interval, self.grace_period, self.max_retry))
        except (SQLAlchemyError, ImportError, OSError) as e:  # no driver for the URL, no such dir, no database
            raise unusable_storage(self.storage, e) from None

    def run_trials(self, study: "optuna.Study", space: dict[str, "BaseDistribution"], fixed: list[str]) -> None:
        """Trials until `n_trials` of the study have finished, `n_jobs` at a time, each slot asking for
        its next trial as soon as its last one ends; then best.yaml."""
        from litlab.compat import runs_jobs_in_this_process

        done = finished_trials(study)
        if study.trials:
            log.info("resuming study %r: %d trial(s) finished, %d to go", study.study_name, done,
                     max(0, self.n_trials - done))  # fmt: skip
        budget = Budget(self.n_trials)
        slots = 1 if runs_jobs_in_this_process(self.launcher) else self.n_jobs  # the basic launcher: one at a time
        if slots == 1:
            self.run_slot(study, space, fixed, budget)
        else:
            run_in_threads(slots, lambda: self.run_slot(study, space, fixed, budget), budget)
        with files.folder_locked(self.sweep_dir):  # workers ending together: the last one's best.yaml holds all
            self.write_best(study)

    def run_slot(self, study: "optuna.Study", space: dict[str, "BaseDistribution"], fixed: list[str],
                 budget: Budget) -> None:  # fmt: skip
        """One slot's trials, one after another, while the budget allows."""
        while (trial := budget.next_trial(study, space, fixed)) is not None:
            state = self.run_trial(study, trial, fixed)
            budget.ended(state)

    def run_trial(self, study: "optuna.Study", trial: "optuna.Trial", fixed: list[str]) -> "TrialState":
        """The trial's job, in the job dir named by its number, with the trial's heartbeat beating
        here while it runs; its outcome told to the study. Interrupted (Ctrl-C), the trial is failed,
        not left running."""
        from optuna.trial import TrialState

        from litlab.compat import heartbeat

        overrides = tuple(self.job_overrides(study, trial, fixed))
        self.validate_batch_is_legal([overrides])
        self.record_job(trial)
        assert self.launcher is not None  # set in setup()
        try:
            with heartbeat(study, trial):
                [result] = self.launcher.launch([overrides], initial_job_idx=trial.number)
        except BaseException:
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        return self.tell(study, trial, result)

    def record_job(self, trial: "optuna.Trial") -> None:
        """Where the trial's job runs (hydra.sweep.subdir is the job's number) and what it searched,
        in the study: the report of any worker's sweep dir lists the trial (litlab.sweeps.jobs)."""
        trial.set_user_attr("job_dir", str((self.sweep_dir / str(trial.number)).resolve()))
        trial.set_user_attr("searched_overrides", as_overrides(trial.params))

    def job_overrides(self, study: "optuna.Study", trial: "optuna.Trial", fixed: list[str]) -> list[str]:
        """The trial's values, the fixed overrides, the trial's number (its TensorBoard run is named
        after it), and where the job reports its epochs (litlab.sweeps.pruning.TrialPruning), as
        config values; no storage for a study in memory, which no job can reach."""
        params = as_overrides(trial.params)
        named = [f"optuna.study_name='{study.study_name}'", f"optuna.trial={trial.number}"]
        if self.storage is None:
            return [*params, *fixed, *named]
        return [*params, *fixed, f"optuna.storage='{self.storage}'", *named, f"optuna.pruner={self.pruner}",
                f"optuna.pruner_args={as_text(self.pruner_args)}"]  # fmt: skip

    def tell(self, study: "optuna.Study", trial: "optuna.Trial", result: Any) -> "TrialState":
        """The job's outcome: its value, or FAIL for an error or a NaN/inf/None value; a trial the
        job itself told PRUNED stays pruned. Its state as the study then has it."""
        from optuna.trial import TrialState

        try:
            value = result.return_value  # raises the job's exception if it failed
        except Exception as e:
            log.error("trial %d failed: %s: %s", trial.number, type(e).__name__, e)
            return study.tell(trial, state=TrialState.FAIL, skip_if_finished=True).state
        values = list(value) if isinstance(value, Sequence) else [value]
        if any(v is None or not math.isfinite(v) for v in values):
            log.error("trial %d returned %s: recorded as failed", trial.number, value)
            return study.tell(trial, state=TrialState.FAIL, skip_if_finished=True).state
        told = study.tell(trial, values, skip_if_finished=True)
        if told.state == TrialState.PRUNED:
            log.info("trial %d pruned at epoch %s", trial.number, told.last_step)
        return told.state

    def write_best(self, study: "optuna.Study") -> None:
        from optuna.trial import TrialState

        states = [t.state for t in study.trials]
        complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
        if not complete:
            log.error("no trial completed; see %s and the report", self.sweep_dir / "sweep.log")
            return
        if len(self.directions) > 1:  # several objectives: no single best trial (see study.best_trials)
            return
        best = study.best_trial
        searched = as_overrides(best.params)
        overrides = [*searched, *best.user_attrs.get("fixed_overrides", [])]
        assert self.config is not None  # set in setup()
        best_yaml = {
            "metric": self.config.get("monitor", {}).get("metric"),
            "direction": self.directions[0],
            "value": best.value,
            "trial": best.number,
            "params": best.params,
            "overrides": overrides,
            "trials": {
                "total": len(states),
                "complete": len(complete),
                "failed": states.count(TrialState.FAIL),
                "pruned": states.count(TrialState.PRUNED),
            },  # fmt: skip
            "study_name": study.study_name,
            "storage": self.storage,
            "importances": importances(study),  # fANOVA shares of the objective's variance
        }
        files.write_with(self.sweep_dir / "best.yaml", lambda path: OmegaConf.save(OmegaConf.create(best_yaml), path))
        log.info("best %s = %.4f (trial %d): %s (written to best.yaml)", best_yaml["metric"], best.value, best.number,
                 " ".join(overrides))  # fmt: skip
