"""A training run's test metrics with how far other rows like these could move them: the bootstrap
95% interval of each headline test metric (accuracy and macro F1, or MAE, RMSE and R²), over the
test stage's rows resampled as `evaluate` resamples them (litlab.evaluation.bootstrap, seed 0), in
the run's record (metrics.json's `test_intervals`)."""

import lightning as L
import torch
from typing_extensions import override

from litlab.evaluation import bootstrap
from litlab.review.figures_callback import gathered

# bootstrap's names of the headline metrics, as the test stage logs them (litlab.models.metrics)
LOGGED = {"acc": "test/acc", "f1_macro": "test/f1", "mae": "test/mae", "rmse": "test/rmse", "r2": "test/r2"}


class TestIntervals(L.Callback):
    """Keeps the test stage's predictions; at its end `found` holds each headline metric's interval,
    `{"test/acc": (low, high), ...}`, on rank zero, over every rank's rows."""

    def __init__(self) -> None:
        self._preds: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self.found: dict[str, tuple[float, float]] = {}

    @override
    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._preds, self._targets, self.found = [], [], {}

    @override
    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._preds.append(outputs["preds"].cpu())  # (B, C) class probabilities or (B,) values
        self._targets.append(outputs["target"].cpu())

    @override
    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._preds:
            return
        preds, targets = torch.cat(self._preds), torch.cat(self._targets)
        if trainer.world_size > 1:  # every rank holds its shard: gather them all (all ranks must call this)
            preds, targets = gathered(pl_module, preds), gathered(pl_module, targets)
        if not trainer.is_global_zero:
            return
        classification = preds.ndim == 2
        predicted = preds.argmax(dim=1) if classification else preds
        found = bootstrap.intervals(targets.numpy(), predicted.numpy(), classification)
        self.found = {LOGGED[name]: bounds for name, bounds in found.items()}
