"""The Hydra callback that closes every multirun (conf/hydra/default.yaml)."""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from typing_extensions import override

from litlab.errors import UserError
from litlab.files.run_record import RECORD
from litlab.review.console import quiet_third_party
from litlab.review.tensorboard import write_sweep_summary
from litlab.sweeps.jobs import job_dirs
from litlab.sweeps.plan import read_plan
from litlab.sweeps.report import SweepReport

log = logging.getLogger(__name__)


def attempt(what: str, write: Callable[[], object]) -> None:
    """Writes `what`, logging the error if it fails: nothing written after the jobs ran may hide
    the outcome of the sweep."""
    try:
        write()
    except Exception:
        log.exception("%s could not be written; the jobs' results are in their dirs", what)


class SweepEnd(Callback):
    """Writes the sweep report (tables and plots, as litlab report does) and TensorBoard's
    experiment summary (litlab.review.tensorboard), then fails the
    multirun if any of its jobs failed: the other jobs have all run by then.

    The failure is a SystemExit (message on stderr, exit code 1): Hydra turns any other
    exception raised by a callback into a warning, and the multirun would exit 0.
    `fail_on_failed_jobs=false` (the Optuna searches): failed trials are results, exit 0."""

    def __init__(self, fail_on_failed_jobs: bool = True) -> None:
        self.fail_on_failed_jobs = fail_on_failed_jobs

    @override
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        quiet_third_party()  # jobs run by other launchers set it in their own processes
        sweep_dir = Path(config.hydra.sweep.dir)
        if not job_dirs(sweep_dir) and not read_plan(sweep_dir):  # a search's worker that found the study done
            log.info("no job ran in %s: nothing to report", sweep_dir)
            return
        try:
            report = SweepReport.load(sweep_dir)
        except UserError as e:  # a job's record that something else wrote: the outcome is unknown
            raise SystemExit(f"the sweep report could not be made: {e}") from None
        attempt("the sweep report", lambda: report.write(show=True))
        # HParams opens on the swept columns; a broken plot must not cost the summary, nor the reverse
        attempt("TensorBoard's experiment summary", lambda: write_sweep_summary(sweep_dir, report.params))
        failed = report.failed_jobs()
        if failed and self.fail_on_failed_jobs:
            lines = "\n".join(f"  {job}: {error}" for job, error in failed)
            raise SystemExit(
                f"{len(failed)} of {len(report.jobs)} jobs failed (details in {sweep_dir}/sweep.log and each job's "
                f"{RECORD}):\n{lines}"
            )
