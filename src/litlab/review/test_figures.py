"""The test set's picture in TensorBoard: confusion matrix or predicted-vs-true, misclassified
images, the worst rows."""

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from litlab.review.figures import confusion_figure, mistakes_figure, regression_figure, worst_rows_markdown


def gathered(pl_module: L.LightningModule, shard: torch.Tensor) -> torch.Tensor:
    """Every rank's `shard` (N, ...), concatenated: (world_size * N, ...) on the CPU."""
    every = pl_module.all_gather(shard)  # (world_size, N, ...)
    assert isinstance(every, torch.Tensor)
    return every.flatten(0, 1).cpu()


class TestFigures(L.Callback):
    """At the end of testing, log to TensorBoard (litlab.review.figures): a confusion matrix
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
