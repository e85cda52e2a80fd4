"""Optuna trials that report every epoch and can be pruned, wherever their job runs.

The Optuna sweeper (hydra_plugins/litlab_sweepers/optuna_sweeper.py) gives each job its trial as
config values: `optuna.storage`, `optuna.study_name`, `optuna.trial` (the trial's number),
`optuna.pruner` and `optuna.pruner_args`. The job opens the study in that storage, reports the
monitored val metric after every validation and asks the study's pruner whether to go on. So
pruning works with every launcher that reaches the storage: in-process, joblib processes,
submitit and SLURM jobs. A study in memory (`hydra.sweeper.storage=null`) no job can reach: its
jobs get only `optuna.study_name` and `optuna.trial`, and report nothing.
"""

from typing import TYPE_CHECKING

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from typing_extensions import override

from litlab.review.tensorboard import EPOCHS, log_final
from litlab.sweeps.study import make_pruner, open_storage

if TYPE_CHECKING:
    import optuna


class TrialPruning(L.Callback):
    """Reports `monitor` to Optuna trial number `trial` of study `study_name` in `storage` after
    each validation (step = epoch). When the study's pruner says so, tells the study the trial is
    PRUNED and stops training at the end of this epoch; checkpoints are saved as usual. Under DDP
    rank 0 reports and decides for all ranks. With no `storage` (a study in memory) it reports
    nothing. When fit ends, the epochs trained go to TensorBoard beside the final metrics."""

    def __init__(
        self, storage: str | None, study_name: str, trial: int, pruner: str, pruner_args: dict, monitor: str
    ) -> None:
        self.storage, self.study_name, self.number, self.monitor = storage, study_name, trial, monitor
        self.pruner = make_pruner(pruner, pruner_args)  # a bad name fails before training
        self.pruned_epoch: int | None = None
        self.trial: optuna.Trial | None = None

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.is_global_zero and self.trial is None and self.storage is not None:
            import optuna

            storage = optuna.storages.get_storage(open_storage(self.storage))
            study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=self.pruner)
            # The trial in another process: Trial(study, trial_id), its id looked up with the
            # storage's public API (Study hides its own id).
            study_id = storage.get_study_id_from_name(self.study_name)
            self.trial = optuna.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, self.number))

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:  # not the post-fit validate
            return
        prune = False
        if self.trial is not None:  # rank 0
            self.trial.report(float(trainer.callback_metrics[self.monitor]), step=trainer.current_epoch)
            prune = self.trial.should_prune()
        if trainer.strategy.broadcast(prune, src=0):
            self.pruned_epoch = trainer.current_epoch
            trainer.should_stop = True
            if self.trial is not None:
                from optuna.trial import TrialState

                self.trial.study.tell(self.number, state=TrialState.PRUNED)

    @override
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Every trial, pruned or not, gets best/epochs: HParams' parallel coordinates draw only the
        # runs that have a value in every ticked column, and this one sets the pruned trials apart.
        logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if trainer.is_global_zero and logger is not None and logger.log_dir:
            log_final(logger.log_dir, {EPOCHS: trainer.current_epoch}, trainer.global_step)
