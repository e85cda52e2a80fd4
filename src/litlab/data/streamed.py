"""Images streamed from their files, for folders whose decoded pixels do not fit in memory:
DataLoader workers decode, convert and resize each file, and batches come in litlab's epoch order
(data.batches.EpochBatches), so that they are the in-memory path's batches, read from disk."""

import weakref
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from typing_extensions import Unpack, override

from litlab.data.batches import Batch, EpochBatches, OrderArgs, Transform
from litlab.data.class_folders import conform, decode


class DecodedImages(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """The images of `files`, with their labels: item i is file i decoded and converted to `channels`
    and `size`, (C, H, W) uint8, and its label. Decodes in the DataLoader's worker processes."""

    def __init__(self, files: list[Path], labels: torch.Tensor, channels: int, size: tuple[int, int]) -> None:
        if len(files) != len(labels):
            raise ValueError(f"{len(files)} files but {len(labels)} labels")
        self.files = [str(f) for f in files]  # plain strings: cheap to send to the workers
        self.labels, self.channels, self.size = labels, channels, size

    def __len__(self) -> int:
        return len(self.files)

    @override
    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return conform(decode(Path(self.files[i])), self.channels, self.size), self.labels[i]


class PassOrder(Sampler[int]):
    """The indices of the current pass, set by FileBatches before each pass: the DataLoader reads
    its sampler afresh at every `iter()`, persistent workers included."""

    def __init__(self) -> None:
        self.order: list[int] = []

    @override
    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


class FileBatches(EpochBatches):
    """Batches of DecodedImages decoded by `num_workers` worker processes (persistent across epochs,
    into pinned memory when the model is on a GPU), then on `device` as EpochBatches delivers them.
    Mid-epoch resume skips indices, not decoded images: the skipped files are never read."""

    def __init__(
        self,
        dataset: DecodedImages,
        batch_size: int,
        shuffle: bool,
        transform: Transform | None,
        device: torch.device,
        num_workers: int,
        **order: Unpack[OrderArgs],
    ) -> None:
        super().__init__(len(dataset), batch_size, shuffle, transform, device, **order)
        self.pass_order = PassOrder()
        self.loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=self.pass_order,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            pin_memory=self.device.type == "cuda",
            # The workers' seeds drawn from their own generator, not torch's global one: the model's
            # dropout then draws what it would draw on the in-memory path.
            generator=torch.Generator().manual_seed(self.seed),
        )
        # The workers end when these batches are dropped, within a second. Left to the collector with
        # the cycles a Trainer makes, the loader's queues would be finalised (their feeder threads
        # stopped) before its iterator's shutdown, whose workers then wait out a 5 s timeout each.
        # Holding the loader here makes it outlive this object; the loader is then freed on its own.
        weakref.finalize(self, _release, self.loader)

    @override
    def __iter__(self) -> Iterator[Batch]:
        skip = self.skipped()
        self.pass_order.order = self.indices()[skip * self.batch_size :].tolist()
        for i, (xb, yb) in enumerate(self.loader, skip):
            yield self.deliver(i, xb, yb)


def _release(loader: DataLoader) -> None:
    """Nothing to do: dropping the last reference to `loader` after this call ends its workers."""
