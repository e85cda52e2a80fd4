"""Train/val/test batches in litlab's epoch order: cut from in-memory tensors (TensorBatches), or
read from files by DataLoader workers (data.streamed.FileBatches). Both shard under DDP exactly as
`DistributedSampler` and resume mid-epoch where a checkpoint left off."""

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator

import torch
from typing_extensions import TypedDict, Unpack, override

Batch = tuple[torch.Tensor, torch.Tensor]
Transform = Callable[[torch.Tensor], torch.Tensor]


class OrderArgs(TypedDict, total=False):
    """How an epoch's order is drawn and sharded (EpochBatches' arguments after the device)."""

    seed: int
    epoch: Callable[[], int]
    rank: int
    world_size: int


class EpochBatches(ABC):
    """An iterable of `(x, y)` batches over `n` rows, on `device`, `transform` applied there.

    Lightning accepts any iterable with a length as a dataloader. Under DDP each of `world_size`
    ranks gets its own shard of every epoch's order, exactly as `torch.utils.data.DistributedSampler`
    gives it: the order is seeded by `seed + epoch()` (the trainer's epoch, so a resumed run
    continues the same sequence of orders), padded by repeating its start to a multiple of
    `world_size`, and rank r takes every world_size-th index from r. Lightning only adds a
    DistributedSampler to a torch DataLoader, so these batches do the sharding themselves.

    `position` counts the batches delivered in the current pass. Set `resume_at` to an
    (epoch, position) a checkpoint kept (the DataModule's state), and the next pass of that
    epoch starts there: a run resumed mid-epoch sees the batches an uninterrupted run would.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool,
        transform: Transform | None,
        device: torch.device,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} is not in [0, world_size={world_size})")
        self.n, self.shuffle, self.transform, self.device = n, shuffle, transform, torch.device(device)
        self.seed, self.epoch, self.rank, self.world_size = seed, epoch, rank, world_size
        self.num_samples = math.ceil(n / world_size)  # per rank, padding included
        self.batch_size = min(batch_size, self.num_samples)
        self.position = 0
        self.resume_at: tuple[int, int] | None = None

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)  # ceil: the last, smaller batch is kept

    def indices(self) -> torch.Tensor:
        """This rank's row indices for the current epoch, in order."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch())
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        if self.world_size > 1:
            total = self.num_samples * self.world_size
            order = order.repeat(math.ceil(total / self.n))[:total]  # pad with the order's own start
            order = order[self.rank : total : self.world_size]
        return order

    def skipped(self) -> int:
        """How many batches of this pass a checkpoint says were already trained on (used once)."""
        skip = self.resume_at[1] if self.resume_at is not None and self.resume_at[0] == self.epoch() else 0
        self.resume_at = None
        return skip

    def deliver(self, i: int, xb: torch.Tensor, yb: torch.Tensor) -> Batch:
        """Batch `i` of the pass on `device`, transformed: pinned and non-blocking from the CPU to a GPU,
        so that the copy overlaps with compute."""
        if xb.device != self.device:
            if xb.device.type == "cpu" and self.device.type == "cuda" and not xb.is_pinned():
                xb, yb = xb.pin_memory(), yb.pin_memory()
            xb, yb = xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)
        self.position = i + 1
        return (xb if self.transform is None else self.transform(xb)), yb

    @abstractmethod
    def __iter__(self) -> Iterator[Batch]: ...


class TensorBatches(EpochBatches):
    """Batches cut from tensors that already hold the whole split: each one `index_select` (a view
    when unshuffled), no Dataset and no per-sample collate, so the Python cost per step does not
    grow with the batch size. `transform=None` when `x` is already scaled."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        transform: Transform | None,
        device: torch.device | None = None,
        **order: Unpack[OrderArgs],
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        super().__init__(len(x), batch_size, shuffle, transform, x.device if device is None else device, **order)
        self.x, self.y = x, y

    @override
    def __iter__(self) -> Iterator[Batch]:
        # One batch of every row (a full batch) or rows in order: views, no copy, no permutation. A
        # full batch's order would change only the order of the sums over it.
        whole = (not self.shuffle or self.batch_size >= self.n) and self.world_size == 1
        order = None if whole else self.indices().to(self.x.device)
        skip = self.skipped()
        for i, start in enumerate(range(skip * self.batch_size, self.num_samples, self.batch_size), skip):
            if order is None:
                xb, yb = self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]
            else:  # index_select: cheaper than x[idx] (advanced indexing) for a small batch on CPU
                idx = order[start : start + self.batch_size]
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            yield self.deliver(i, xb, yb)
