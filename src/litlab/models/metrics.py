"""The metrics the models log, named `<stage>/<metric>`, and which way each is better.

A metric's direction is declared where the metric is defined: torchmetrics' own
`Metric.higher_is_better` for the torchmetrics, `LOSS_IS_BETTER` for the loss. `direction()` is the
one place that answers "min or max?": the best checkpoint, early stopping, the Optuna study and the
sweep report all follow it (through `monitor.mode`, which train.py resolves with it).
"""

from collections.abc import Callable

import torch
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric, MetricCollection, R2Score
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy, MulticlassF1Score
from typing_extensions import override

from litlab.data_spec import Task
from litlab.errors import UserError

MetricFactory = Callable[[int], Metric]  # number of classes -> a fresh metric

REGRESSION: dict[str, MetricFactory] = {  # on (B,) values in the target's units
    "mse": lambda _: MeanSquaredError(),
    "rmse": lambda _: MeanSquaredError(squared=False),
    "mae": lambda _: MeanAbsoluteError(),
    "r2": lambda _: R2Score(),
}
# On (B, C) class probabilities, so binary and multiclass share one code path (C = 2 for binary).
CLASSIFICATION: dict[str, MetricFactory] = {
    "acc": lambda c: MulticlassAccuracy(c, average="micro"),
    "f1": lambda c: MulticlassF1Score(c, average="macro"),
}


class PositiveClassAUROC(BinaryAUROC):
    """The binary AUROC of p, fed the (B, 2) probabilities [1 - p, p] the other metrics take: what
    macro one-vs-rest AUROC over both columns gives, for one sort of the scores instead of two."""

    @override
    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        super().update(preds[:, 1], target)


BINARY_ONLY: dict[str, MetricFactory] = {"auroc": lambda _: PositiveClassAUROC()}

LOSS = "loss"  # every stage logs its mean loss (models.base), whatever the task
LOSS_IS_BETTER = "min"
MODES = ("auto", "min", "max")


def factories(task: Task) -> dict[str, MetricFactory]:
    if task is Task.REGRESSION:
        return REGRESSION
    return {**CLASSIFICATION, **BINARY_ONLY} if task is Task.BINARY else CLASSIFICATION


def task_metrics(task: Task, num_classes: int, stage: str) -> MetricCollection:
    """The stage's torchmetrics for `task`, named `<stage>/<name>` (the loss is logged beside them)."""
    return MetricCollection({name: make(num_classes) for name, make in factories(task).items()}, prefix=f"{stage}/")


def names(task: Task, stage: str) -> list[str]:
    """Every name logged for `stage` ('train', 'val' or 'test') of `task`, loss first."""
    return [f"{stage}/{LOSS}", *(f"{stage}/{name}" for name in factories(task))]


def direction(metric: str) -> str:
    """'min' or 'max': which way `metric` (`val/acc`, or a bare `acc`) is better, as declared by
    the metric itself. A name no model logs is a UserError listing the ones that are."""
    name = metric.rsplit("/", 1)[-1]
    if name == LOSS:
        return LOSS_IS_BETTER
    make = {**REGRESSION, **CLASSIFICATION, **BINARY_ONLY}.get(name)
    if make is None:
        known = sorted({LOSS, *REGRESSION, *CLASSIFICATION, *BINARY_ONLY})
        raise UserError(f"monitor.metric={metric!r} is not a metric litlab logs; valid: val/<{'|'.join(known)}>")
    higher = make(2).higher_is_better
    if higher is None:  # a metric added without a direction: a bug here, not the user's
        raise TypeError(f"metric {name!r} declares no direction (torchmetrics' higher_is_better is None)")
    return "max" if higher else "min"


def resolve_monitor(metric: str, mode: str, logged: list[str]) -> tuple[str, str]:
    """The metric checkpointing and early stopping watch, and its mode. `auto` takes the metric's
    declared direction; an explicit mode that contradicts it is refused (it would keep the worst
    epoch). `logged`: the val metrics the model logs."""
    if metric not in logged:
        raise UserError(f"monitor.metric={metric!r} is not logged for this task; valid: {', '.join(logged)}")
    return metric, checked_mode(metric, mode, "monitor.mode")


def checked_mode(metric: str, mode: str, key: str) -> str:
    """`mode` ('auto', 'min' or 'max', given as `key`) resolved for `metric`: its declared direction."""
    if mode not in MODES:
        raise UserError(f"{key}={mode!r} is invalid; valid: {', '.join(MODES)}")
    better = direction(metric)
    if mode not in ("auto", better):
        raise UserError(
            f"{key}={mode} contradicts {metric}, whose {'lower' if better == 'min' else 'higher'} values are "
            f"better: the best checkpoint would be the worst epoch. Leave {key}=auto (or set {better})"
        )
    return better
