"""A training run's test metrics with how far other rows like these could move them: the bootstrap
95% interval of each headline test metric (accuracy and macro F1, or MAE, RMSE and R²), over the
test stage's rows resampled as `evaluate` resamples them (litlab.evaluation.bootstrap, seed 0), in
the run's record (metrics.json's `test_intervals`)."""

import lightning as L
from typing_extensions import override

from litlab.evaluation import bootstrap
from litlab.review.figures_callback import KeepsTestOutputs, data_spec

# bootstrap's names of the headline metrics, as the test stage logs them (litlab.models.metrics)
LOGGED = {"acc": "test/acc", "f1_macro": "test/f1", "mae": "test/mae", "rmse": "test/rmse", "r2": "test/r2"}


class TestIntervals(KeepsTestOutputs):
    """Keeps the test stage's predictions; at its end `found` holds each headline metric's interval,
    `{"test/acc": (low, high), ...}`, on rank zero, over every rank's rows."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, tuple[float, float]] = {}

    @override
    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.found = {}
        if (outputs := self.all_outputs(trainer, pl_module)) is None or (spec := data_spec(trainer)) is None:
            return
        preds, targets = outputs  # (N, C) class probabilities or (N,) values
        classification = spec.task.is_classification
        predicted = preds.argmax(dim=1) if classification else preds
        found = bootstrap.intervals(targets.numpy(), predicted.numpy(), classification)
        self.found = {LOGGED[name]: bounds for name, bounds in found.items()}
