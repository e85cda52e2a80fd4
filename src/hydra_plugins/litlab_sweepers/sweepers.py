"""The grid sweeper for litlab's multiruns (Hydra finds plugins only in the hydra_plugins package).

`KeepGoingSweeper` (hydra/sweeper=keep_going, the default): Hydra's grid sweeper, except that
a failed job does not stop the sweep. Failures reach the exit code through
litlab.sweeps.sweep_end.SweepEnd, which runs after the sweep and first writes the report.
The Optuna sweeper is in optuna_sweeper.py.
"""

import logging
from collections.abc import Sequence
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # see litlab.compat
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from omegaconf import OmegaConf
from typing_extensions import override

log = logging.getLogger(__name__)


class KeepGoingSweeper(BasicSweeper):
    """Hydra's basic sweeper (grid over the `-m` overrides), except that every job runs:
    a failed job is logged, and the sweep goes on with the next (BasicSweeper raises at
    the first failed job of a batch, which also skips the end-of-sweep callbacks)."""

    @override
    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        # Hydra imports every plugin module to find plugins, even for --help: Lightning (which
        # litlab.compat imports) only once a sweep starts.
        from litlab.compat import sweep_params

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*sweep_params(self), *arguments])
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
