"""Batches cut from in-memory tensors by indexing a permutation: no Dataset, no per-sample collate."""

import math
from collections.abc import Callable, Iterator

import torch


class TensorBatches:
    """An iterable of `(x, y)` batches over tensors that already hold the whole split.

    Lightning accepts any iterable with a length as a dataloader. Each batch is one
    `index_select` on the stored tensors (a view when unshuffled), a copy to `device` when
    the data is stored elsewhere (pinned and non_blocking from CPU to GPU), then `transform`
    (augmentation and scaling) on that device; `transform=None` when `x` is already scaled
    (InMemoryDataModule keeps a scaled copy when it fits). The Python cost per step does not
    grow with the batch size.

    Under DDP each of `world_size` ranks gets its own shard of every epoch's order, exactly
    as `torch.utils.data.DistributedSampler` gives it: the order is seeded by `seed + epoch()`
    (the trainer's epoch, so a resumed run continues the same sequence of orders),
    padded by repeating its start to a multiple of `world_size`, and rank r takes every
    world_size-th index from r. Lightning only adds a DistributedSampler to a torch
    DataLoader, so these batches do the sharding themselves.

    `position` counts the batches delivered in the current pass. Set `resume_at` to an
    (epoch, position) a checkpoint kept (InMemoryDataModule.state_dict), and the next pass of that
    epoch starts there: a run resumed mid-epoch sees the batches an uninterrupted run would.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        transform: Callable[[torch.Tensor], torch.Tensor] | None,
        device: torch.device | None = None,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} is not in [0, world_size={world_size})")
        self.x, self.y = x, y
        self.shuffle, self.transform = shuffle, transform
        self.device = x.device if device is None else torch.device(device)
        self.seed, self.epoch, self.rank, self.world_size = seed, epoch, rank, world_size
        self.num_samples = math.ceil(len(x) / world_size)  # per rank, padding included
        self.batch_size = min(batch_size, self.num_samples)
        # Pinned host memory lets the copy to the GPU overlap with compute.
        self._pin = self.x.device.type == "cpu" and self.device.type == "cuda"
        self.position = 0
        self.resume_at: tuple[int, int] | None = None

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)  # ceil: the last, smaller batch is kept

    def indices(self) -> torch.Tensor:
        """This rank's sample indices for the current epoch, in order."""
        n = len(self.x)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch())
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if self.world_size > 1:
            total = self.num_samples * self.world_size
            order = order.repeat(math.ceil(total / n))[:total]  # pad with the order's own start
            order = order[self.rank : total : self.world_size]
        return order

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.indices()
        whole = not self.shuffle and self.world_size == 1
        if not whole:
            order = order.to(self.x.device)
        skip = 0
        if self.resume_at is not None and self.resume_at[0] == self.epoch():  # the pass a checkpoint cut short
            skip = self.resume_at[1]
        self.resume_at = None
        for i, start in enumerate(range(skip * self.batch_size, len(order), self.batch_size), skip):
            if whole:  # in order: a view, no copy
                xb, yb = self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]
            else:  # index_select: cheaper than x[idx] (advanced indexing) for a small batch on CPU
                idx = order[start : start + self.batch_size]
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            if xb.device != self.device:
                if self._pin:
                    xb, yb = xb.pin_memory(), yb.pin_memory()
                xb, yb = xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)
            self.position = i + 1
            yield (xb if self.transform is None else self.transform(xb)), yb
