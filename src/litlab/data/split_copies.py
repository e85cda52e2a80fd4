"""Where batches are cut from: copies of the splits' tensors on the model's device or the CPU, raw or
scaled once, each made once and not per epoch."""

from collections.abc import Callable
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch

from litlab.data.scaling import Scaler
from litlab.errors import UserError

DEVICES = ("auto", "cpu", "cuda")  # data.device
PRESCALED_BYTES = 1 << 30  # the most a scaled float32 copy of the data may take (MNIST: 0.2 GB)


@dataclass
class Split:
    x: torch.Tensor
    y: torch.Tensor


def check_device(device: str) -> None:
    """data.device: one of DEVICES, and cuda only where there is one."""
    if device not in DEVICES:
        raise UserError(f"data.device={device!r} is invalid; valid: {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("data.device='cuda' but no CUDA device is available; use data.device=auto or cpu")


def placement(device: str, trainer: L.Trainer | None) -> tuple[torch.device, torch.device]:
    """(where the split tensors live, where batches are delivered: the model's device) for
    data.device=`device`. `auto` keeps them on the GPU when the model is on one, else on the CPU."""
    compute = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
    if device == "cuda" and compute.type != "cuda":
        raise UserError(
            f"data.device='cuda' but the model runs on {compute}; use trainer.accelerator=gpu, or data.device=auto"
        )
    if device == "cpu" or compute.type != "cuda":
        return torch.device("cpu"), compute
    return compute, compute


def prescaled_fits(held: np.ndarray) -> bool:
    """Whether float32 copies of all splits of `held` fit in PRESCALED_BYTES. Scaling per batch costs
    three ops a step (to float, shift, divide): on CPU more than the indexing that cuts the batch."""
    return held.size * 4 <= PRESCALED_BYTES


class SplitCopies:
    """Each split on each device it was asked for, raw (`raw(name)`, in memory) or through `scaler`."""

    def __init__(self, raw: Callable[[str], Split], scaler: Scaler) -> None:
        self.raw, self.scaler = raw, scaler
        self._copies: dict[tuple[str, torch.device, bool], Split] = {}  # (split, device, scaled)

    def get(self, name: str, storage: torch.device, scaled: bool = False) -> Split:
        """Split `name` on `storage`, raw or scaled."""
        key = (name, storage, scaled)
        if key not in self._copies:
            if scaled:
                raw = self.get(name, storage)
                self._copies[key] = Split(self.scaler(raw.x), raw.y)
            else:
                s = self.raw(name)
                self._copies[key] = Split(s.x.to(storage), s.y.to(storage))
        return self._copies[key]

    def rescale(self) -> None:
        """The scaled copies again, after the scaler changed (a checkpoint's was loaded); in place,
        so that the loaders built already see them."""
        for (name, storage, scaled), s in self._copies.items():
            if scaled:
                s.x.copy_(self.scaler(self.get(name, storage).x))
