"""The test set's picture in TensorBoard: confusion matrix or predicted-vs-true, misclassified
images, the worst rows."""

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from typing_extensions import override

from litlab.data_spec import DataSpec, InputKind
from litlab.review.figures import confusion_figure, mistakes_figure, regression_figure, worst_rows_markdown


def data_spec(trainer: L.Trainer) -> DataSpec | None:
    """The DataSpec of the trainer's DataModule; None when the data came without one (bare loaders)."""
    spec = getattr(getattr(trainer, "datamodule", None), "spec", None)
    return spec if isinstance(spec, DataSpec) else None


def gathered(pl_module: L.LightningModule, shard: torch.Tensor) -> torch.Tensor:
    """Every rank's `shard` (N, ...), concatenated: (world_size * N, ...) on the CPU."""
    every = pl_module.all_gather(shard)  # (world_size, N, ...)
    assert isinstance(every, torch.Tensor)
    return every.flatten(0, 1).cpu()


class KeepsTestOutputs(L.Callback):
    """Keeps the test stage's predictions and targets (test_step's outputs), for what a subclass
    makes of them once testing ends (`all_outputs`)."""

    def __init__(self) -> None:
        self._preds: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []

    @override
    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._preds, self._targets = [], []

    @override
    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._preds.append(outputs["preds"].cpu())  # (B, C) class probabilities or (B,) values
        self._targets.append(outputs["target"].cpu())

    def all_outputs(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Every rank's predictions and targets, on rank zero (every rank must call this); None
        elsewhere, or with no test batch."""
        if not self._preds:
            return None
        preds, targets = torch.cat(self._preds), torch.cat(self._targets)
        if trainer.world_size > 1:  # every rank holds its shard: gather them all
            preds, targets = gathered(pl_module, preds), gathered(pl_module, targets)
        return (preds, targets) if trainer.is_global_zero else None


class TestFigures(KeepsTestOutputs):
    """At the end of testing, log to TensorBoard (litlab.review.figures): a confusion matrix
    (classification) or predicted-vs-true with residuals (regression), under
    `test/confusion_matrix` or `test/pred_vs_true`; up to `mistakes` misclassified images
    (`test/misclassified`, image data) and the worst-predicted rows (`test/worst_predictions`, text)."""

    def __init__(self, mistakes: int = 16) -> None:
        super().__init__()
        self.max_mistakes = mistakes
        self._mistakes: list[tuple[np.ndarray, int, int, float]] = []

    @override
    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_test_epoch_start(trainer, pl_module)
        self._mistakes = []

    @override
    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        super().on_test_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
        preds, target = self._preds[-1], self._targets[-1]
        spec = data_spec(trainer)
        x = batch[0]  # (B, C, H, W) for images
        images = spec is not None and spec.kind is InputKind.IMAGE and spec.task.is_classification
        if images and len(self._mistakes) < self.max_mistakes:
            wrong = (preds.argmax(1) != target).nonzero().flatten()[: self.max_mistakes - len(self._mistakes)]
            for i in wrong.tolist():
                image = x[i].detach().float().cpu().numpy()
                self._mistakes.append((image, int(target[i]), int(preds[i].argmax()), float(preds[i].max())))

    @override
    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        tb = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tb is None or (outputs := self.all_outputs(trainer, pl_module)) is None:
            return
        preds, targets = outputs
        spec = data_spec(trainer)
        if spec is None:
            return
        names = list(spec.class_names) if spec.class_names else None
        p, t, step = preds.numpy(), targets.numpy(), trainer.global_step
        if spec.task.is_classification:  # (N, C) class probabilities
            tb.experiment.add_figure("test/confusion_matrix", confusion_figure(p, t, names), global_step=step)
        else:  # (N,) regression values
            tb.experiment.add_figure("test/pred_vs_true", regression_figure(p, t, spec.target_name), global_step=step)
        if self._mistakes:
            tb.experiment.add_figure("test/misclassified", mistakes_figure(self._mistakes, names), global_step=step)
        text = worst_rows_markdown(p, t, spec.task, names)
        tb.experiment.add_text("test/worst_predictions", text, global_step=step)
