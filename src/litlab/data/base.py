"""The DataModule every dataset builds on: split, scaling, fast batches, checkpointed state."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.trainer.states import TrainerFn
from typing_extensions import TypedDict, override

from litlab import compat
from litlab.data import fingerprint
from litlab.data.arrays import Arrays, checked, describe
from litlab.data.augment import BatchAugment
from litlab.data.batches import EpochBatches, OrderArgs, TensorBatches, Transform
from litlab.data.scaling import Moments, Scaler
from litlab.data.split_copies import Split, SplitCopies, batch_dtype, check_device, placement, prescaled_fits
from litlab.data.splits import Splitter, checked_folds, checked_seed, checked_split
from litlab.data_spec import DataSpec, Task
from litlab.errors import UserError
from litlab.values import is_int


class DataArgs(TypedDict, total=False):
    """The arguments every DataModule takes besides its own (SplitDataModule's, conf/data_shared.yaml);
    each DataModule takes them as `**shared: Unpack[DataArgs]`, so that mypy and an editor see them."""

    split: Sequence[float] | None
    seed: int
    scaling: str
    batch_size: int | str
    device: str
    num_folds: int
    fold: int


class SplitDataModule(L.LightningDataModule, ABC):
    """Splits one dataset into train/val/test, fits the scaler on train, and serves the batches.

    Subclasses implement `load()`, and may set `augment` (train batches only). The data,
    not the model config, decides the `task`, `input_shape` and `num_outputs` that the
    model is built with. Here the rows are held as tensors and batches cut from them (a subclass
    may stream its rows from files instead: data=image_folder). `device`: where the tensors live.
    `auto` keeps them on the GPU when the model is on one (moved once; batches never touch the
    host), else on the CPU. Where the tensors live on the model's device and a scaled copy of the
    whole dataset fits in split_copies.PRESCALED_BYTES, splits without augmentation are scaled once
    and batches are cut from the scaled copy (float64 under 64-true precision, which would cast each
    batch); otherwise each batch is scaled as it is cut.
    """

    # True for datasets that come with a fixed test set (MNIST...): data.split is then
    # [train, val, 0], and train/val are split from the official train set.
    official_test: bool = False
    default_split: tuple[float, float, float] = (0.7, 0.15, 0.15)  # data.split when none is given
    augment: BatchAugment | None = None
    location_key: str = "data"  # the setting that says where the data's files are (data.path...)
    target_name: str = "target"  # what figures call a regression target (a CSV's column name)

    def __init__(
        self,
        split: Sequence[float] | None = None,
        seed: int = 42,
        scaling: str = "standard",
        batch_size: int | str = 64,
        device: str = "auto",
        num_folds: int = 0,
        fold: int = 0,
    ) -> None:
        super().__init__()
        split = checked_split(self.default_split if split is None else split, self.official_test, type(self).__name__)
        if not (batch_size == "full" or (is_int(batch_size) and batch_size >= 1)):
            raise UserError(
                f"data.batch_size={batch_size!r} is invalid: use a positive integer "
                "(1 for online learning) or 'full' for full-batch gradient descent"
            )
        check_device(device)
        num_folds, fold = checked_folds(num_folds, fold)
        self.split, self.seed, self.batch_size, self.device = split, checked_seed(seed), batch_size, device
        self.num_folds, self.fold = num_folds, fold
        self.scaler = Scaler(scaling)
        self._copies = SplitCopies(self.split_tensors, self.scaler)
        self._arrays: Arrays | None = None
        self._splits: dict[str, Split] = {}
        self._rows: dict[str, np.ndarray] = {}
        self._spec: DataSpec | None = None
        self._fingerprint: dict | None = None
        self._train_batches: EpochBatches | None = None
        self._train_resume_at: tuple[int, int] | None = None  # a checkpoint's, for the next train loader
        # Kept in the checkpoint (evaluate.py rebuilds the data from them), not merged into the logger's
        # hparams: Lightning refuses a name both sides use with other values (data.channels and the
        # CNN's channels), and litlab writes TensorBoard's hparams itself (review.tensorboard).
        self.save_hyperparameters(logger=False)

    @abstractmethod
    def load(self) -> Arrays:
        """Read the whole dataset from its source. Called once."""

    # --- what the model is built from -------------------------------------------------
    @property
    def arrays(self) -> Arrays:
        if self._arrays is None:
            self._arrays = checked(self.load(), type(self).__name__, self.official_test)
        return self._arrays

    @property
    def spec(self) -> DataSpec:
        """What the rest of litlab knows of this data (litlab.data_spec), decided once."""
        if self._spec is None:
            self._spec = describe(self.arrays, self.split_labels("train"), self.target_name)
        return self._spec

    @property
    def task(self) -> Task:
        return self.arrays.task

    @property
    def class_names(self) -> list[str] | None:
        return self.arrays.class_names

    def source_files(self) -> list[Path]:
        """The files the data is read from; none for built-in sets, whose arrays are fingerprinted."""
        return []

    @property
    def fingerprint(self) -> dict:
        """Path, size and sha256 of each source file (or a hash of the arrays), computed once."""
        if self._fingerprint is None:
            files = self.source_files()
            self._fingerprint = (
                fingerprint.of_files(files, self.location_key)
                if files
                else fingerprint.of_arrays(self.arrays.held, self.arrays.y)
            )
        return self._fingerprint

    # --- Lightning hooks ----------------------------------------------------------------
    @override
    def setup(self, stage: str | None = None) -> None:
        if self._rows:
            return
        train_idx, val_idx, test_idx = self._split_indices(self.arrays.y)
        self._rows = {"train": train_idx, "val": val_idx, "test": test_idx}
        if not self.scaler.fitted:  # a checkpoint may already have restored it
            self.scaler.fit_moments(self.train_moments(), self.arrays.kind)

    def train_moments(self) -> Moments:
        """What the scaler is fitted to: the train split's statistics."""
        return Moments.of(self.split_tensors("train").x, self.arrays.kind)

    def row_indices(self, name: str) -> np.ndarray:
        """Which rows of the source data (e.g. of the CSV file's data rows) make up split `name`."""
        self.setup()
        rows = self.arrays.source_rows
        return self._rows[name] if rows is None else rows[self._rows[name]]

    def split_labels(self, name: str) -> torch.Tensor:
        """The targets of one split: 'train', 'val' or 'test'. (N,) class ids (long) or float targets."""
        self.setup()
        dtype = torch.long if self.task.is_classification else torch.float32
        return torch.as_tensor(self.arrays.y[self._rows[name]], dtype=dtype)

    def split_tensors(self, name: str) -> Split:
        """The raw (unscaled) inputs and targets of one split, held in memory."""
        if name not in self._splits:
            self.setup()
            # np.take, not held[rows]: the same rows, gathered several times faster on a large table
            x = torch.as_tensor(np.take(self.arrays.held, self._rows[name], axis=0))
            if x.dtype != torch.uint8:  # uint8 pixels stay 4x smaller; batches are scaled to float
                x = x.float()
            self._splits[name] = Split(x, self.split_labels(name))
        return self._splits[name]

    def contents(self, name: str) -> np.ndarray:
        """What identifies each row's content in split `name`, for finding rows shared between splits:
        the row itself, (N, ...)."""
        return np.ascontiguousarray(self.split_tensors(name).x.numpy())

    @override
    def train_dataloader(self) -> EpochBatches:
        # debug=overfit: the same first batches every epoch, as Lightning makes of a DataLoader
        overfitting = self.trainer is not None and compat.overfit_batches(self.trainer) > 0
        self._train_batches = self._batches("train", shuffle=not overfitting)
        self._train_batches.resume_at, self._train_resume_at = self._train_resume_at, None  # used once
        return self._train_batches

    @override
    def val_dataloader(self) -> EpochBatches:
        return self._batches("val", shuffle=False)

    @override
    def test_dataloader(self) -> EpochBatches:
        return self._batches("test", shuffle=False)

    @override
    def state_dict(self) -> dict:
        """Everything needed to preprocess new inputs exactly as in training."""
        return {
            "spec": self.spec.to_state(),
            "scaler": self.scaler.state_dict(),
            "fingerprint": self.fingerprint,
            "train_position": self._train_position(),
        }

    def _train_position(self) -> list[int] | None:
        """[epoch, batches delivered] of a train pass in progress (a mid-epoch checkpoint), where a
        resumed run starts that epoch's batches. Here and not as the loader's own state, which
        Lightning skips restoring when the loader was built before the restore, as for a one-cycle
        schedule's length. A finished pass leaves nothing to skip: the trainer's epoch may already
        be the next one (a checkpoint at the end of training), whose batches are all still to come."""
        batches = self._train_batches
        if batches is None or not 0 < batches.position < len(batches):
            return None
        return [batches.epoch(), batches.position]

    @override
    def load_state_dict(self, state: dict) -> None:
        self._check_resumed_data(state.get("fingerprint"))
        if not self.scaler.holds(state["scaler"]):  # validate/test on a checkpoint of this run: unchanged
            self.scaler.load_state_dict(state["scaler"])
            self._copies.rescale()
        position = state.get("train_position")
        resume_at = (position[0], position[1]) if position else None
        if self._train_batches is not None:  # built before the restore (a one-cycle schedule's length)
            self._train_batches.resume_at = resume_at
        else:
            self._train_resume_at = resume_at

    def _check_resumed_data(self, saved: dict | None) -> None:
        """A resume (fit from a checkpoint) continues on the data the checkpoint was trained on, moved
        or not; on other data its scaling, batches and split would not be that run's."""
        if saved is None or self.trainer is None or self.trainer.state.fn != TrainerFn.FITTING:
            return  # validate/test of this run, or evaluate.py, which checks the data itself
        try:
            fingerprint.check_same(saved, self.fingerprint)
        except UserError as e:
            raise UserError(
                f"ckpt_path: the checkpoint was trained on other data ({e}); resume with the data it was trained "
                "on, as in the config.yaml of its run"
            ) from None

    @override
    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        # TensorBatches already delivers (x, y) on the model's device; Lightning's default walks
        # the batch with apply_to_collection and calls .to() on each tensor, every step.
        x, y = batch
        if x.device == device and y.device == device:
            return batch
        return x.to(device), y.to(device)

    # --- internals ----------------------------------------------------------------------
    def _batches(self, name: str, shuffle: bool) -> EpochBatches:
        storage, compute = placement(self.device, self.trainer)
        s = self._copies.get(name, storage)
        transform: Transform | None = self._transform(name)
        # Scaled once, not per batch. Data on another device than the model stays raw: uint8 crosses
        # to the GPU 4x smaller.
        dtype = batch_dtype(self.trainer)
        if transform is self.scaler and storage == compute and prescaled_fits(self.arrays.held, dtype):
            s, transform = self._copies.get(name, storage, scaled=dtype), None
        size = len(s.x) if self.batch_size == "full" else int(self.batch_size)
        return TensorBatches(s.x, s.y, size, shuffle, transform, compute, **self._order())

    def _transform(self, name: str) -> Transform:
        """What a batch of split `name` goes through on the model's device: scaling, after augmentation
        for train batches (on raw pixels, so that what a crop or shift moves in is black)."""
        augment = self.augment if name == "train" and self.augment is not None and self.augment.active else None
        if augment is None:
            return self.scaler
        return lambda x: self.scaler(augment(x))

    def _order(self) -> OrderArgs:
        """How the epochs' orders are seeded and sharded: the trainer's epoch, rank and world size."""
        trainer = self.trainer
        if trainer is None:
            return OrderArgs(seed=self.seed)
        return OrderArgs(seed=self.seed, epoch=lambda: trainer.current_epoch, rank=trainer.global_rank,
                         world_size=trainer.world_size)  # fmt: skip

    def _split_indices(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        labels = self.class_names if self.task.is_classification else None
        a = self.arrays
        return Splitter(self.split, self.seed, self.num_folds, self.fold, a.num_test, a.num_val, labels).indices(y)
