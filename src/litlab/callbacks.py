"""Callbacks that Lightning does not ship: a best checkpoint that breaks ties and survives a
resume into a new dir, a last checkpoint written every epoch, convergence of full-batch training,
a note when val/loss was still improving, the test-set picture in TensorBoard."""

import logging
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from litlab.compat import best_checkpoint_moved
from litlab.figures import confusion_figure, mistakes_figure, regression_figure, worst_rows_markdown

log = logging.getLogger(__name__)


class BestCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose best checkpoint, on a tie of the monitored metric (val/acc often
    ties on a small validation set), moves to the later epoch only if `tie_breaker` is lower there."""

    def __init__(self, *args, tie_breaker: str = "val/loss", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tie_breaker = tie_breaker
        self.best_tie_breaker: float | None = None  # tie_breaker's value at the best checkpoint

    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None) -> bool:
        better = super().check_monitor_top_k(trainer, current)
        tie_value = trainer.callback_metrics.get(self.tie_breaker)
        best = self.best_model_score
        if not better and self.save_top_k == 1 and best is not None and current is not None and tie_value is not None:
            tie = bool(current == best.to(current.device))
            lower = self.best_tie_breaker is not None and float(tie_value) < self.best_tie_breaker
            better = trainer.strategy.reduce_boolean_decision(tie and lower)
        if better and tie_value is not None:
            self.best_tie_breaker = float(tie_value)
        return better

    def state_dict(self) -> dict:
        return {**super().state_dict(), "best_tie_breaker": self.best_tie_breaker}

    def load_state_dict(self, state_dict: dict) -> None:
        # Resumed into a new run dir, Lightning would keep only the old best's path and forget its
        # score, and the resumed run's "best" would be the best of its own epochs. Instead the old
        # best is copied into this run's dir, with its score: the best stays the best of the whole run.
        old_dir, best = state_dict.get("dirpath"), state_dict.get("best_model_path")
        if self.dirpath and old_dir != self.dirpath and best:
            state_dict = self._carried_over(state_dict, Path(best))
        super().load_state_dict(state_dict)
        self.best_tie_breaker = state_dict.get("best_tie_breaker")

    def _carried_over(self, state_dict: dict, best: Path) -> dict:
        if not best.is_file():
            log.warning("the best checkpoint before the resume, %s, is gone: the best is chosen among new epochs", best)
            return {**state_dict, "best_model_path": "", "best_tie_breaker": None}
        copy = Path(str(self.dirpath)) / best.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(best, copy)
        return best_checkpoint_moved(state_dict, copy)


class LastCheckpoint(ModelCheckpoint):
    """`dirpath/last.ckpt`: the state at the end of the latest epoch, rewritten every epoch
    whatever the monitored metric did (Lightning's `save_last` follows the best checkpoint).
    Resuming from it continues at the next epoch."""

    def __init__(self, dirpath: str) -> None:
        super().__init__(dirpath=dirpath, filename="last", monitor=None, save_top_k=1, enable_version_counter=False)

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict.get("dirpath") == self.dirpath:  # from another run's dir there is nothing to keep
            super().load_state_dict(state_dict)


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

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.active = trainer.num_training_batches == 1
        if not self.active and any(isinstance(o, torch.optim.LBFGS) for o in trainer.optimizers):
            log.warning(
                "L-BFGS on %d minibatches an epoch: each runs up to optimizer.max_iter iterations on its own "
                "batch; L-BFGS is a full-batch method, use data.batch_size=full",
                trainer.num_training_batches,
            )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loss = trainer.callback_metrics.get(self.monitor)
        if not self.active or loss is None:
            return
        if self._last_loss is not None:
            self.last_change = self._last_loss - float(loss)
        self._last_loss = float(loss)
        super().on_train_epoch_end(trainer, pl_module)
        if self.stopped_epoch:
            log.info(
                "converged at epoch %d: train/loss %.6g changed by %.2g (< min_delta %.2g)",
                self.stopped_epoch,
                self._last_loss,
                self.last_change or 0.0,
                abs(self.min_delta),
            )

    def state_dict(self) -> dict:
        return {**super().state_dict(), "last_loss": self._last_loss, "last_change": self.last_change}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._last_loss, self.last_change = state_dict.get("last_loss"), state_dict.get("last_change")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.active and not self.stopped_epoch and trainer.current_epoch >= (trainer.max_epochs or 0):
            log.warning(
                "train/loss had not converged when trainer.max_epochs=%d ended the run (the last epoch lowered it "
                "by %.2g; converged means < %.2g): raise trainer.max_epochs, or optimizer.max_iter for L-BFGS",
                trainer.max_epochs,
                self.last_change or float("nan"),
                abs(self.min_delta),
            )


class StillImproving(L.Callback):
    """At the end of fitting, says in one log line whether `metric` was still improving: its best
    value over the last `epochs` epochs beats the best before them by more than `min_rel_delta`."""

    def __init__(self, metric: str = "val/loss", epochs: int = 3, min_rel_delta: float = 1e-3) -> None:
        self.metric, self.epochs, self.min_rel_delta = metric, epochs, min_rel_delta
        self.history: list[float] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.metric)
        if not trainer.sanity_checking and value is not None:
            self.history.append(float(value))

    def state_dict(self) -> dict:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict.get("history", []))

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


def gathered(pl_module: L.LightningModule, shard: torch.Tensor) -> torch.Tensor:
    """Every rank's `shard` (N, ...), concatenated: (world_size * N, ...) on the CPU."""
    every = pl_module.all_gather(shard)  # (world_size, N, ...)
    assert isinstance(every, torch.Tensor)
    return every.flatten(0, 1).cpu()


class TestFigures(L.Callback):
    """At the end of testing, log to TensorBoard (litlab.figures): a confusion matrix
    (classification) or predicted-vs-true with residuals (regression), under
    `test/confusion_matrix` or `test/pred_vs_true`; up to `mistakes` misclassified images
    (`test/misclassified`, image data) and the worst-predicted rows (`test/worst_predictions`, text)."""

    def __init__(self, mistakes: int = 16) -> None:
        self.max_mistakes = mistakes
        self._preds: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self._mistakes: list[tuple[np.ndarray, int, int, float]] = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._preds, self._targets, self._mistakes = [], [], []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        preds, target = outputs["preds"].cpu(), outputs["target"].cpu()
        self._preds.append(preds)
        self._targets.append(target)
        x = batch[0]  # (B, C, H, W) for images
        if preds.ndim == 2 and x.ndim == 4 and len(self._mistakes) < self.max_mistakes:
            wrong = (preds.argmax(1) != target).nonzero().flatten()[: self.max_mistakes - len(self._mistakes)]
            for i in wrong.tolist():
                image = x[i].detach().float().cpu().numpy()
                self._mistakes.append((image, int(target[i]), int(preds[i].argmax()), float(preds[i].max())))

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        tb = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tb is None or not self._preds:
            return
        preds, targets = torch.cat(self._preds), torch.cat(self._targets)
        if trainer.world_size > 1:  # every rank holds its shard: gather them all (all ranks must call this)
            preds, targets = gathered(pl_module, preds), gathered(pl_module, targets)
        if not trainer.is_global_zero:
            return
        datamodule = getattr(trainer, "datamodule", None)
        names = getattr(datamodule, "class_names", None)
        p, t, step = preds.numpy(), targets.numpy(), trainer.global_step
        if preds.ndim == 2:  # (N, C) class probabilities
            tb.experiment.add_figure("test/confusion_matrix", confusion_figure(p, t, names), global_step=step)
        else:  # (N,) regression values
            target = getattr(datamodule, "target", None) or "target"
            tb.experiment.add_figure("test/pred_vs_true", regression_figure(p, t, target), global_step=step)
        if self._mistakes:
            tb.experiment.add_figure("test/misclassified", mistakes_figure(self._mistakes, names), global_step=step)
        tb.experiment.add_text("test/worst_predictions", worst_rows_markdown(p, t, names), global_step=step)
