"""When full-batch training has converged, and whether val/loss was still improving at the end."""

import logging

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping
from typing_extensions import override

log = logging.getLogger(__name__)

class Convergence(EarlyStopping):
    """Stops full-batch training (one step an epoch, e.g. L-BFGS) once an epoch lowers the
    train loss by less than `min_delta`, and warns if `max_epochs` ends the run before that.
    Does nothing for minibatch training, whose epoch losses are noisy."""

    def __init__(self, min_delta: float = 1e-6) -> None:
        super().__init__(
            monitor="train/loss", min_delta=min_delta, patience=1, mode="min", check_on_train_epoch_end=True
        )
        self.active = False
        self.last_change: float | None = None
        self._last_loss: float | None = None

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # full-batch training over more than one epoch (two epochs tell a change; fast_dev_run runs one)
        self.active = trainer.num_training_batches == 1 and trainer.max_epochs != 1
        if trainer.num_training_batches > 1 and any(isinstance(o, torch.optim.LBFGS) for o in trainer.optimizers):
            log.warning(
                "L-BFGS on %d minibatches an epoch: each runs up to optimizer.max_iter iterations on its own "
                "batch; L-BFGS is a full-batch method, use data.batch_size=full",
                trainer.num_training_batches,
            )

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loss = trainer.callback_metrics.get(self.monitor)
        if not self.active or loss is None:
            return
        if self._last_loss is not None:
            self.last_change = self._last_loss - float(loss)
        self._last_loss = float(loss)
        super().on_train_epoch_end(trainer, pl_module)
        if self.stopped_epoch:  # epochs count from 0, as "best epoch" does
            log.info(
                "converged: epoch %d changed train/loss (%.6g) by only %.2g (< min_delta %.2g); training stops",
                self.stopped_epoch,
                self._last_loss,
                self.last_change or 0.0,
                abs(self.min_delta),
            )

    @override
    def state_dict(self) -> dict:
        return {**super().state_dict(), "last_loss": self._last_loss, "last_change": self.last_change}

    @override
    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._last_loss, self.last_change = state_dict.get("last_loss"), state_dict.get("last_change")

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.active or self.stopped_epoch or trainer.current_epoch < (trainer.max_epochs or 0):
            return
        lbfgs = any(isinstance(o, torch.optim.LBFGS) for o in trainer.optimizers)
        change = f"the last epoch lowered it by {self.last_change:.2g}" if self.last_change is not None else "one epoch"
        log.warning(
            "train/loss had not converged when trainer.max_epochs=%d ended the run (%s; converged means < %.2g): "
            "raise trainer.max_epochs%s",
            trainer.max_epochs,
            change,
            abs(self.min_delta),
            ", or optimizer.max_iter" if lbfgs else "",
        )


class StillImproving(L.Callback):
    """At the end of fitting, says in one log line whether `metric` was still improving: its best
    value over the last `epochs` epochs beats the best before them by more than `min_rel_delta`."""

    def __init__(self, metric: str = "val/loss", epochs: int = 3, min_rel_delta: float = 1e-3) -> None:
        self.metric, self.epochs, self.min_rel_delta = metric, epochs, min_rel_delta
        self.history: list[float] = []

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.metric)
        if not trainer.sanity_checking and value is not None:
            self.history.append(float(value))

    @override
    def state_dict(self) -> dict:
        return {"history": self.history}

    @override
    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict.get("history", []))

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if len(self.history) <= self.epochs:
            return
        before, recent = min(self.history[: -self.epochs]), min(self.history[-self.epochs :])
        if before - recent > self.min_rel_delta * abs(before):
            log.warning(
                "%s was still improving at the end (%.6g in the last %d epochs, %.6g before): "
                "more epochs may help, raise trainer.max_epochs",
                self.metric,
                recent,
                self.epochs,
                before,
            )
