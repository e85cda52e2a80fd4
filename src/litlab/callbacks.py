"""Callbacks that Lightning does not ship: the test-set picture in TensorBoard."""

import lightning as L
import matplotlib

matplotlib.use("Agg")  # figures are rendered to TensorBoard, never shown
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from torchmetrics.classification import MulticlassConfusionMatrix  # noqa: E402


class TestFigures(L.Callback):
    """At the end of testing, log a confusion matrix (classification) or a predicted-vs-true
    scatter (regression) as an image to TensorBoard, under `test/confusion_matrix` or `test/pred_vs_true`."""

    def __init__(self) -> None:
        self._preds: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._preds, self._targets = [], []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._preds.append(outputs["preds"].cpu())
        self._targets.append(outputs["target"].cpu())

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        tb = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tb is None or not self._preds:
            return
        preds, targets = torch.cat(self._preds), torch.cat(self._targets)
        if trainer.world_size > 1:  # every rank holds its shard: gather them all (all ranks must call this)
            preds = pl_module.all_gather(preds).flatten(0, 1).cpu()
            targets = pl_module.all_gather(targets).flatten(0, 1).cpu()
        if not trainer.is_global_zero:
            return
        if preds.ndim == 2:  # (N, C) class probabilities
            names = getattr(trainer.datamodule, "class_names", None)
            cm = MulticlassConfusionMatrix(num_classes=preds.shape[1], sync_on_compute=False)
            cm.update(preds, targets)
            fig, _ = cm.plot(labels=names)
            tag = "test/confusion_matrix"
        else:  # (N,) regression values
            fig, ax = plt.subplots(figsize=(5, 5))
            ax.scatter(targets, preds, s=8, alpha=0.6)
            lo, hi = float(min(targets.min(), preds.min())), float(max(targets.max(), preds.max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
            ax.set(xlabel="true", ylabel="predicted", title="test: predicted vs true")
            ax.legend()
            tag = "test/pred_vs_true"
        tb.experiment.add_figure(tag, fig, global_step=trainer.global_step, close=True)
