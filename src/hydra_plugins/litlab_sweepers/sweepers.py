"""The grid sweeper for litlab's multiruns (Hydra finds plugins only in the hydra_plugins package).

`KeepGoingSweeper` (hydra/sweeper=keep_going, the default): Hydra's grid sweeper, except that
a failed job does not stop the sweep. Failures reach the exit code through
litlab.sweeps.sweep_end.SweepEnd, which runs after the sweep and first writes the report.
The Optuna sweeper is in optuna_sweeper.py.
"""

import logging
import signal
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # see litlab.compat
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from omegaconf import OmegaConf, open_dict
from typing_extensions import override

from litlab import files

log = logging.getLogger(__name__)


class KeepGoingSweeper(BasicSweeper):
    """Hydra's basic sweeper (grid over the `-m` overrides), except that every job runs: a failed
    job is logged, and the sweep goes on with the next (BasicSweeper raises at the first failed
    job of a batch, which also skips the end-of-sweep callbacks). It writes the sweep's plan first
    (litlab.sweeps.plan); on a sweep dir that holds jobs already, the finished ones are kept as
    they are and the others run again. Interrupted, it writes the report before it exits."""

    @override
    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        # Hydra imports every plugin module to find plugins, even for --help: Lightning (which
        # litlab.compat imports) only once a sweep starts.
        from litlab.compat import sweep_params
        from litlab.errors import exit_on_user_error
        from litlab.sweeps.lock import sweep_lock

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*sweep_params(self), *arguments])
        self.overrides = self.split_arguments(overrides, self.max_batch_size)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as held:
            exit_on_user_error(lambda: held.enter_context(sweep_lock(sweep_dir)))  # one sweep at a time
            return self.start(sweep_dir)

    def start(self, sweep_dir: Path) -> list[Sequence[JobReturn]]:
        """The plan checked against the one in the dir and written, then the jobs; the report if interrupted."""
        from litlab.errors import exit_on_user_error
        from litlab.sweeps.plan import check_same_jobs, write_plan

        assert self.overrides is not None  # split in sweep()
        again = any(p.is_dir() for p in sweep_dir.iterdir())
        jobs = [job for batch in self.overrides for job in batch]
        exit_on_user_error(lambda: check_same_jobs(sweep_dir, jobs))  # before anything in the dir is rewritten
        files.write_with(sweep_dir / "multirun.yaml", lambda path: OmegaConf.save(self.config, path))
        write_plan(sweep_dir, jobs)
        try:
            return self.run_batches(again)
        except (KeyboardInterrupt, SystemExit) as e:  # Ctrl-C: the report now, never-started jobs included
            report_now(sweep_dir)
            if isinstance(e, KeyboardInterrupt):  # the parallel launcher's: exit as a job interrupted by SIGINT does
                raise SystemExit(128 + signal.SIGINT) from None
            raise

    def run_batches(self, again: bool) -> list[Sequence[JobReturn]]:
        from litlab.sweeps.plan import unfinished_runs

        assert self.launcher is not None
        returns, job_idx = [], 0
        while not self.is_done():
            batch = self.get_job_batch()
            self.validate_batch_is_legal(batch)  # a typo in an override fails here, before any job
            for first, jobs in unfinished_runs(batch, job_idx, self.kept if again else lambda *_: False):
                results = self.launcher.launch(jobs, initial_job_idx=first)
                for job, result in zip(jobs, results, strict=True):
                    try:
                        _ = result.return_value  # raises the job's exception if it failed
                    except Exception as e:
                        log.error("job [%s] failed: %s: %s", " ".join(job), type(e).__name__, e)
                returns.append(results)
            job_idx += len(batch)
        return returns

    def kept(self, num: int, overrides: Sequence[str]) -> bool:
        """Job `num` finished in an earlier run of this sweep: it is not run again."""
        from litlab.checkpoints.store import finished

        if finished(self.job_dir(num, overrides)):
            log.info("job %d [%s] finished in an earlier run of this sweep: kept as it is", num, " ".join(overrides))
            return True
        return False

    def job_dir(self, num: int, overrides: Sequence[str]) -> Path:
        """Where the launcher puts job `num`: hydra.sweep.dir/hydra.sweep.subdir, resolved as Hydra's launchers do."""
        assert self.config is not None and self.hydra_context is not None
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg):
            cfg.hydra.job.num = num
        return Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir)


def report_now(sweep_dir: Path) -> None:
    from litlab.sweeps.report import SweepReport

    try:
        SweepReport.load(sweep_dir).write(show=True)
        log.warning("sweep interrupted: report in %s; run the same command again to finish it", sweep_dir)
    except Exception:  # the interrupt must still end the sweep
        log.exception("the sweep report could not be written; the jobs' results are in their dirs")
