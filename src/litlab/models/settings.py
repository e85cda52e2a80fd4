"""What every model takes besides its own settings, and the checks of those settings."""

from collections.abc import Callable, Iterable
from typing import Required

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
from typing_extensions import TypedDict

from litlab.data_spec import Task
from litlab.errors import UserError
from litlab.values import is_number

OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]
SchedulerFactory = Callable[..., LRScheduler | ReduceLROnPlateau]

REGRESSION_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": F.mse_loss,
    "l1": F.l1_loss,
    "huber": F.huber_loss,
}


class ModelArgs(TypedDict, total=False):
    """The arguments every model takes besides its own settings (SupervisedModule's): what the data
    tells it (run.build.build_model) and the shared settings of conf/model_shared.yaml. Each model
    takes them as `**shared: Unpack[ModelArgs]`, so that mypy and an editor see them."""

    task: Required[str]
    num_outputs: Required[int]
    train_size: int
    target_mean: float
    target_std: float
    optimizer: OptimizerFactory | None
    scheduler: SchedulerFactory | None
    loss: str | None
    l1: float
    l2: float
    compile: bool
    steps_per_call: int | str
    cuda_graphs: bool
    class_weight: str | list[float] | None
    class_counts: list[int] | None
    temperature: float
    init_from: str | None
    freeze_epochs: int
    ema: float | None
    pixel_unit: list[list[float]] | None


def class_weights(task: Task, class_weight: str | list[float] | None, counts: list[int] | None) -> torch.Tensor | None:
    """Each class's weight in the loss (C,): scikit-learn's `class_weight='balanced'`,
    n_samples / (n_classes * count) over the train split's `counts`, or the given list; None: all 1."""
    if class_weight is None:
        return None
    if not task.is_classification:
        raise UserError(f"model.class_weight={class_weight!r} applies to classification only; leave it null")
    if class_weight == "balanced":
        if not counts or min(counts) < 1:
            raise UserError("model.class_weight=balanced needs the train split's rows per class; the data gave none")
        return torch.tensor([sum(counts) / (len(counts) * c) for c in counts], dtype=torch.float32)
    weights = list(class_weight) if isinstance(class_weight, list | tuple) else None
    n = len(counts) if counts else None
    positive = weights is not None and all(isinstance(w, int | float) and w > 0 for w in weights)
    if weights is None or not positive or (n is not None and len(weights) != n):
        raise UserError(
            f"model.class_weight={class_weight!r} is invalid: use balanced, null, or one weight > 0 per class"
            + (f" ({n} classes), e.g. {[1.0] * n}" if n else "")
        )
    return torch.tensor(weights, dtype=torch.float32)


def check_settings(task: Task, loss: str | None, l1: float, l2: float, lr: object, target_std: float) -> None:
    """One UserError for the first setting a model cannot train with. `loss` None is the task's
    own; mse for a classifier is accepted too (checkpoints of classifiers may carry it), unused."""
    if loss is not None and loss not in REGRESSION_LOSSES:
        raise UserError(f"model.loss={loss!r} is invalid; valid: null (the task's own), {', '.join(REGRESSION_LOSSES)}")
    if loss not in (None, "mse") and task.is_classification:
        raise UserError(
            f"model.loss={loss!r} applies to regression only; {task.value} data is fitted with "
            "cross-entropy: leave model.loss unset (null)"
        )
    if l1 < 0 or l2 < 0:
        raise UserError(f"model.l1={l1}, model.l2={l2}: penalty strengths must be >= 0")
    if lr is not None and not (is_number(lr) and lr > 0):
        raise UserError(
            f"optimizer.lr={lr!r} is invalid: the learning rate must be a number > 0, e.g. optimizer.lr=0.001"
        )
    if not target_std > 0:
        raise UserError(f"target_std={target_std} is invalid: the target's spread must be > 0")
