"""Batches cut from in-memory tensors by indexing a permutation: no Dataset, no per-sample collate."""

from collections.abc import Callable, Iterator

import torch


class TensorBatches:
    """An iterable of `(x, y)` batches over tensors that already hold the whole split.

    Lightning accepts any iterable with a length as a dataloader. Each batch is one
    indexing op on the stored tensors plus the `transform` (feature scaling), so the cost
    per step does not grow with the batch size in Python.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        transform: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        self.x, self.y = x, y
        self.batch_size = min(batch_size, len(x))
        self.shuffle = shuffle
        self.transform = transform

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)  # ceil: the last, smaller batch is kept

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        # The global RNG is seeded by seed_everything, so the order is reproducible per seed.
        order = torch.randperm(n) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                xb, yb = self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]
            else:
                idx = order[start : start + self.batch_size]
                xb, yb = self.x[idx], self.y[idx]
            yield self.transform(xb), yb
