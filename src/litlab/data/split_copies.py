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
PRESCALED_BYTES = 1 << 30  # the most a scaled copy of the data may take (MNIST as float32: 0.2 GB)
SCALED_ROWS = 1 << 16  # rows scaled at once into a copy


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


def batch_dtype(trainer: L.Trainer | None) -> torch.dtype:
    """What the trainer's precision makes of a float batch: float64 under `64-true` (L-BFGS), where
    Lightning casts every batch, a copy of the whole split per epoch for a full batch, unless it is
    float64 already; else float32 (mixed precision casts inside the step, not the batch)."""
    return torch.float64 if trainer is not None and trainer.precision == "64-true" else torch.float32


def prescaled_fits(held: np.ndarray, dtype: torch.dtype = torch.float32) -> bool:
    """Whether scaled copies of all splits of `held` as `dtype` fit in PRESCALED_BYTES. Scaling per batch
    costs three ops a step (to float, shift, divide): on CPU more than the indexing that cuts the batch."""
    return held.size * dtype.itemsize <= PRESCALED_BYTES


class SplitCopies:
    """Each split on each device it was asked for, raw (`raw(name)`, in memory) or through `scaler`."""

    def __init__(self, raw: Callable[[str], Split], scaler: Scaler) -> None:
        self.raw, self.scaler = raw, scaler
        # (split, device, scaled as this dtype or raw: None)
        self._copies: dict[tuple[str, torch.device, torch.dtype | None], Split] = {}

    def get(self, name: str, storage: torch.device, scaled: torch.dtype | None = None) -> Split:
        """Split `name` on `storage`, raw (None) or scaled, as float `scaled`."""
        key = (name, storage, scaled)
        if key not in self._copies:
            if scaled is not None:
                raw = self.get(name, storage)
                x = torch.empty(raw.x.shape, dtype=scaled, device=raw.x.device)
                self._copies[key] = Split(self._scale_into(raw.x, x), raw.y)
            else:
                s = self.raw(name)
                self._copies[key] = Split(s.x.to(storage), s.y.to(storage))
        return self._copies[key]

    def rescale(self) -> None:
        """The scaled copies again, after the scaler changed (a checkpoint's was loaded); in place,
        so that the loaders built already see them."""
        for (name, storage, scaled), s in self._copies.items():
            if scaled is not None:
                self._scale_into(self.get(name, storage).x, s.x)

    def _scale_into(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """x through the scaler (in float32), written into `out` (its dtype) and returned: block by
        block, so that a float64 copy is made without a float32 one of the whole split beside it."""
        for rows, block in zip(out.split(SCALED_ROWS), x.split(SCALED_ROWS), strict=True):
            rows.copy_(self.scaler(block))
        return out
