"""One split's network outputs as evaluate.py reports them: the raw logits (which temperature
scaling needs), the model's probabilities or values, each example's loss, and the inputs of the
examples with the highest losses."""

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from litlab.data_spec import InputKind, Task
from litlab.evaluation.calibration import example_nll
from litlab.models import SupervisedModule


@dataclass(frozen=True)
class SplitOutputs:
    """Every example of one split, in the split's order (that of test_predictions.csv)."""

    logits: torch.Tensor  # (N, K) the network's output, before the model's temperature
    outputs: torch.Tensor  # (N, C) class probabilities or (N,) values: SupervisedModule.predict_outputs
    targets: torch.Tensor  # (N,) class ids or values
    losses: torch.Tensor  # (N,) float64: -log p(true class), or |prediction - target| for regression
    worst: torch.Tensor  # (k,) the indices of the k highest losses, highest first
    worst_inputs: torch.Tensor | None  # (k, C, H, W) those images as the model saw them; None for tables


def example_losses(model: SupervisedModule, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B,) each example's loss as the report ranks them: the cross-entropy of the probabilities
    the model reports (its temperature applied), or the absolute error in the target's units."""
    if model.task is Task.REGRESSION:
        return (model.predict_outputs(logits).double() - targets.double()).abs()
    return example_nll(model.task, logits, targets, model.temperature)


def highest(losses: torch.Tensor, k: int) -> torch.Tensor:
    """The indices of the `k` highest `losses`, highest first; ties keep the split's order."""
    return torch.sort(losses, descending=True, stable=True).indices[:k]


@torch.no_grad()
def collect(
    model: SupervisedModule, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], kind: InputKind, keep: int
) -> SplitOutputs:
    """Run `model` (on its own device, in eval mode) over `batches`, in order. For images, the `keep`
    highest-loss inputs are kept as they pass (a running top-k), not the whole split: a streamed
    image folder need not fit in memory."""
    model.eval()
    parameter = next(model.parameters())
    logits, targets, losses = [], [], []
    pool_x, pool_loss, pool_at = None, torch.empty(0, dtype=torch.float64), torch.empty(0, dtype=torch.long)
    seen = 0
    for x, y in batches:
        x = x.to(parameter.device, parameter.dtype if x.is_floating_point() else None)
        out = model(x).float().cpu()
        loss = example_losses(model, out, y.cpu())
        logits.append(out)
        targets.append(y.cpu())
        losses.append(loss)
        if kind is InputKind.IMAGE and keep > 0:
            x_cpu = x.float().cpu()
            pool_x = x_cpu if pool_x is None else torch.cat([pool_x, x_cpu])
            pool_loss = torch.cat([pool_loss, loss])
            pool_at = torch.cat([pool_at, torch.arange(seen, seen + len(y))])
            top = highest(pool_loss, keep)  # stable: among equal losses the earlier examples stay
            pool_x, pool_loss, pool_at = pool_x[top], pool_loss[top], pool_at[top]
        seen += len(y)
    all_logits, all_losses = torch.cat(logits), torch.cat(losses)
    return SplitOutputs(
        logits=all_logits,
        outputs=model.predict_outputs(all_logits),
        targets=torch.cat(targets),
        losses=all_losses,
        worst=highest(all_losses, keep),
        worst_inputs=pool_x,
    )
