"""A worker's share of an Optuna search: which trial a free slot runs next, and when to stop.

`n_trials` counts the study's finished trials (complete or pruned) over every worker. A slot asks
for a trial only while the finished ones plus this worker's own running ones are fewer than
`n_trials`: one worker alone runs exactly `n_trials`; N workers may end with up to N - 1 more,
the trials other workers started in the same moment. Light to import, like litlab.sweeps.study.
"""

import logging
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.trial import TrialState

log = logging.getLogger(__name__)


def finished_trials(study: "optuna.Study") -> int:
    """What `n_trials` counts: trials that ran to their end, complete or pruned. A failed trial, or
    one a killed worker left running, is replaced by a new one."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


class Budget:
    """The trials of one worker's slots: asked one at a time (under a lock, so two slots never take
    the same last place), counted while they run, and the failures of this run."""

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials
        self.running = self.failed = 0
        self.stopped = False  # by an interrupt or a slot's error: no slot asks again
        self.lock = threading.Lock()

    def next_trial(
        self, study: "optuna.Study", space: dict[str, "BaseDistribution"], fixed: list[str]
    ) -> "optuna.Trial | None":
        """A new trial (a retried one first, which Optuna queues as WAITING), or None: the study
        has its trials, or this run only failed."""
        import optuna

        with self.lock:
            finished = finished_trials(study)
            if self.stopped or finished + self.running >= self.n_trials:
                return None
            if self.failed >= self.n_trials:  # a search that only fails would never end
                log.error("%d trials failed in this run: stopping with %d of %d finished (see sweep.log)",
                          self.failed, finished, self.n_trials)  # fmt: skip
                self.stopped = True
                return None
            with warnings.catch_warnings():  # heartbeats are "experimental" (since Optuna 2.9) and "for
                # Study.optimize": a worker beats them itself (litlab.compat.heartbeat). Not the user's concern.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
                optuna.storages.fail_stale_trials(study)  # dead workers' trials: failed, queued again
                trial = study.ask(space)
            trial.set_user_attr("fixed_overrides", fixed)
            self.running += 1
            return trial

    def ended(self, state: "TrialState") -> None:
        from optuna.trial import TrialState

        with self.lock:
            self.running -= 1
            self.failed += state == TrialState.FAIL


JOIN_WAKE_S = 0.2  # how often the main thread looks up from waiting for the slots


def run_in_threads(n: int, slot: Callable[[], None], budget: Budget) -> None:
    """`slot` in `n` threads until each returns. Ctrl-C (which reaches only this, the main thread)
    or an error in one slot stops every slot from asking again; the jobs under way end (an
    interrupt reaches their processes too), then the first error or the interrupt is raised."""
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            slot()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            with budget.lock:
                budget.stopped = True
                errors.append(e)

    threads = [threading.Thread(target=guarded, name=f"trial slot {i}") for i in range(n)]
    try:
        for thread in threads:  # inside the try: Ctrl-C may come while the first slots already run
            thread.start()
        for thread in threads:
            while thread.is_alive():  # a join without timeout would not wake for a Ctrl-C another thread took
                thread.join(JOIN_WAKE_S)
    except KeyboardInterrupt:
        with budget.lock:
            budget.stopped = True
        for thread in threads:
            if thread.ident is not None:  # started
                thread.join()
        raise
    if errors:
        raise errors[0]
