"""An Optuna search as a Hydra sweeper (`hydra/sweeper=litlab_optuna`, the hparams_search presets),
on Optuna's public ask-and-tell API (optuna >= 4).

The search space takes hydra-optuna-sweeper's syntax, in `hydra.sweeper.params` or on the command
line: `interval(a, b)`, `tag(log, interval(a, b))`, `choice(...)`, `range(...)`. A study lives in
its storage (default: SQLite in the sweep dir); running the same command again resumes it: trials
an interrupted run left RUNNING are marked failed, and trials run until `n_trials` of them have
finished (complete or pruned): a failed trial is replaced, up to `n_trials` failures in one run;
job dirs are numbered on. A trial whose job fails is a failed trial and the search goes
on. At the end, best.yaml in the sweep dir holds the best value and the overrides that give it.

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
from litlab.sweeps.study import check_names, check_same_settings, make_pruner, open_storage, unusable_storage

from .search_space import as_text, distribution  # relative: hydra_plugins is a namespace package

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

# Hydra imports every plugin module to discover plugins, even for `--help`: optuna is imported
# only once a search starts.

log = logging.getLogger(__name__)


def next_job_num(sweep_dir: Path) -> int:
    """One past the highest numbered job dir already in `sweep_dir` (0 for a new sweep)."""
    nums = [int(p.name) for p in sweep_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(nums, default=-1) + 1


def finished_trials(study: "optuna.Study") -> int:
    """What `n_trials` counts: trials that ran to their end, complete or pruned. A failed trial, or
    one a killed sweep left running, is replaced by a new one."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


class OptunaSweeper(Sweeper):
    """Runs `n_trials` trials, `n_jobs` at a time through Hydra's launcher, each asked of an Optuna
    study in `storage` (see the module docstring)."""

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
    ) -> None:
        self.sampler, self.study_name, self.storage = sampler, study_name, storage
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
        overrides, which every trial gets as they are."""
        assert self.hydra_context is not None  # Hydra calls setup() first
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        configured = parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()])
        given = parser.parse_overrides(arguments)
        space = {o.get_key_element(): distribution(o) for o in [*configured, *given] if o.is_sweep_override()}
        return space, [str(o.input_line) for o in given if not o.is_sweep_override()]

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
            exit_on_user_error(lambda: held.enter_context(sweep_lock(self.sweep_dir)), self.show_traceback)
            study = exit_on_user_error(self.opened_study, self.show_traceback)
            exit_on_user_error(lambda: check_same_settings(study, fixed), self.show_traceback)
            self.run_trials(study, space, fixed)

    def opened_study(self) -> "optuna.Study":
        """The study in `storage`; a storage that cannot be opened is a UserError naming it."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return self.study(open_storage(self.storage))
        except (SQLAlchemyError, ImportError, OSError) as e:  # no driver for the URL, no such dir, no database
            raise unusable_storage(self.storage, e) from None

    def run_trials(self, study: "optuna.Study", space: dict[str, "BaseDistribution"], fixed: list[str]) -> None:
        """Trials until `n_trials` have finished (those an interrupted run left RUNNING marked failed), best.yaml."""
        from optuna.trial import TrialState

        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            log.warning("trial %d was left running by an interrupted sweep: marking it failed", t.number)
            study.tell(t.number, state=TrialState.FAIL)
        done, failed_before = finished_trials(study), len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        if study.trials:
            log.info("resuming study %r: %d trial(s) finished, %d to go", study.study_name, done, self.n_trials - done)
        job_idx = next_job_num(self.sweep_dir)
        while (remaining := self.n_trials - finished_trials(study)) > 0:
            failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))) - failed_before
            if failed >= self.n_trials:  # a search that only fails would never end
                log.error("%d trials failed in this run: stopping with %d of %d finished (see sweep.log)",
                          failed, self.n_trials - remaining, self.n_trials)  # fmt: skip
                break
            trials = [study.ask(space) for _ in range(min(self.n_jobs, remaining))]
            for trial in trials:
                trial.set_user_attr("fixed_overrides", fixed)
            batch = [tuple(self.job_overrides(study, t, fixed)) for t in trials]
            self.validate_batch_is_legal(batch)
            assert self.launcher is not None  # set in setup()
            results = self.launcher.launch(batch, initial_job_idx=job_idx)
            # A job whose pruner stopped it has told the study itself: read those once per batch.
            pruned = {t.number: t.last_step for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))}
            for trial, result in zip(trials, results, strict=True):
                if trial.number in pruned:
                    log.info("trial %d pruned at epoch %s", trial.number, pruned[trial.number])
                else:
                    self.tell(study, trial, result)
            job_idx += len(trials)
        self.write_best(study)

    def job_overrides(self, study: "optuna.Study", trial: "optuna.Trial", fixed: list[str]) -> list[str]:
        """The trial's values, the fixed overrides, the trial's number (its TensorBoard run is named
        after it), and where the job reports its epochs (litlab.sweeps.pruning.TrialPruning), as
        config values; no storage for a study in memory, which no job can reach."""
        params = [f"{k}={as_text(v)}" for k, v in trial.params.items()]
        named = [f"optuna.study_name='{study.study_name}'", f"optuna.trial={trial.number}"]
        if self.storage is None:
            return [*params, *fixed, *named]
        return [*params, *fixed, f"optuna.storage='{self.storage}'", *named, f"optuna.pruner={self.pruner}",
                f"optuna.pruner_args={as_text(self.pruner_args)}"]  # fmt: skip

    def tell(self, study: "optuna.Study", trial: "optuna.Trial", result: Any) -> None:
        """The job's outcome: its value, or FAIL for an error or a NaN/inf/None value."""
        from optuna.trial import TrialState

        try:
            value = result.return_value  # raises the job's exception if it failed
        except Exception as e:
            log.error("trial %d failed: %s: %s", trial.number, type(e).__name__, e)
            study.tell(trial, state=TrialState.FAIL)
            return
        values = list(value) if isinstance(value, Sequence) else [value]
        if any(v is None or not math.isfinite(v) for v in values):
            log.error("trial %d returned %s: recorded as failed", trial.number, value)
            study.tell(trial, state=TrialState.FAIL)
            return
        study.tell(trial, values)

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
        searched = [f"{k}={as_text(v)}" for k, v in best.params.items()]
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
        }
        files.write_with(self.sweep_dir / "best.yaml", lambda path: OmegaConf.save(OmegaConf.create(best_yaml), path))
        log.info("best %s = %s with %s (written to best.yaml)", best_yaml["metric"], best.value, overrides)
