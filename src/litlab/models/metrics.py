"""torchmetrics per task, named `<stage>/<metric>`."""

from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric, MetricCollection, R2Score
from torchmetrics.classification import MulticlassAccuracy, MulticlassAUROC, MulticlassF1Score

from litlab.errors import UserError
from litlab.task import Task


def task_metrics(task: Task, num_classes: int, stage: str) -> MetricCollection:
    """Regression: mse, mae, r2 on (B,) predictions. Classification: acc, macro f1 (binary: + auroc)
    on (B, C) class probabilities, so binary and multiclass share one code path (C = 2 for binary)."""
    metrics: dict[str, Metric | MetricCollection]
    if task is Task.REGRESSION:
        metrics = {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()}
    else:
        metrics = {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "f1": MulticlassF1Score(num_classes, average="macro"),
        }
        if task is Task.BINARY:
            # Macro one-vs-rest AUROC over [1 - p, p] equals the binary AUROC of p.
            metrics["auroc"] = MulticlassAUROC(num_classes, average="macro")
    return MetricCollection(metrics, prefix=f"{stage}/")


MODES = ("auto", "min", "max")


def resolve_monitor(metric: str, mode: str, logged: list[str]) -> tuple[str, str]:
    """The metric checkpointing and early stopping watch, and its mode: `auto` is 'min' for
    losses and errors, 'max' for scores. `logged`: the val metrics the model logs."""
    if metric not in logged:
        raise UserError(f"monitor.metric={metric!r} is not logged for this task; valid: {', '.join(logged)}")
    if mode not in MODES:
        raise UserError(f"monitor.mode={mode!r} is invalid; valid: {', '.join(MODES)}")
    if mode == "auto":
        mode = "min" if metric.rsplit("/", 1)[-1] in ("loss", "mse", "mae") else "max"
    return metric, mode
