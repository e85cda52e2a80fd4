"""A whole dataset as its DataModule loaded it, before splitting, and the checks every load passes."""

from dataclasses import dataclass, field

import numpy as np
import torch

from litlab.data_spec import Columns, DataSpec, InputKind, Task
from litlab.errors import UserError


@dataclass
class Arrays:
    """A whole dataset as loaded from its source, before splitting."""

    # (N, F) tabular, or (N, C, H, W) images (uint8 pixels are kept as uint8); None: the images stay in
    # their files and are decoded batch by batch (the streamed path), and `streamed_shape` is one's shape.
    x: np.ndarray | None
    y: np.ndarray  # (N,) class ids 0..C-1, or float targets for regression
    task: Task
    kind: InputKind  # what one row of x is: the loader says so, nothing guesses it from x's shape
    class_names: list[str] | None = None  # classification only, index = class id
    feature_names: list[str] | None = None  # tabular only
    num_test: int = 0  # the last num_test rows are the dataset's official test set, if it has one
    num_val: int = 0  # the num_val rows before them are its given val set, if it has one (image folders)
    source_rows: np.ndarray | None = None  # row i is the source's row source_rows[i] (default: i)
    # Tabular only: the source's feature columns before encoding (default: feature_names), and
    # which of them were one-hot encoded into feature_names; predict.py encodes new rows alike.
    input_columns: list[str] | None = None
    categorical_columns: list[str] | None = field(default_factory=list)
    streamed_shape: tuple[int, ...] | None = None  # (C, H, W) of one decoded image, where x is None

    def __post_init__(self) -> None:
        # Plain str, not numpy.str_: checkpoints must load with torch.load(weights_only=True).
        def plain(names: list | None) -> list[str] | None:
            return None if names is None else [str(c) for c in names]

        self.class_names, self.feature_names = plain(self.class_names), plain(self.feature_names)
        self.input_columns = plain(self.input_columns) or self.feature_names
        self.categorical_columns = plain(self.categorical_columns) or []
        if (self.x is None) == (self.streamed_shape is None):  # a loader's bug, not the user's
            raise ValueError("Arrays: give x, or streamed_shape for images that stay in their files")
        if len(self.input_shape) != self.kind.dims:
            raise ValueError(f"Arrays: {self.kind} data needs inputs of {self.kind.dims} dims, not {self.input_shape}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One input's shape: (F,) or (C, H, W)."""
        return tuple(self.x.shape[1:]) if self.x is not None else tuple(self.streamed_shape or ())

    @property
    def held(self) -> np.ndarray:
        """x, for code that needs the inputs in memory; a DataModule's bug to ask where they are streamed."""
        if self.x is None:
            raise ValueError("Arrays.held: the inputs are streamed from their files (data.in_memory=false)")
        return self.x

    @property
    def pixel_max(self) -> float | None:
        """Images only: the brightest value the pixels can take (255 for uint8 images; files decode to uint8)."""
        if self.kind is not InputKind.IMAGE:
            return None
        return 255.0 if self.x is None or self.x.dtype == np.uint8 else float(self.x.max())


def checked(a: Arrays, name: str, official_test: bool) -> Arrays:
    """`a`, if every DataModule can use it: finite features, 2+ classes, a finite regression target.
    `name`: the DataModule, for the error."""
    if official_test and not a.num_test:
        raise ValueError(f"{name}.load() gave no official test rows (Arrays.num_test)")
    x = a.x if a.x is not None else np.zeros((0, 1), dtype=np.uint8)  # streamed: decoded pixels are finite
    bad = ~np.isfinite(x) if np.issubdtype(x.dtype, np.floating) else np.zeros(1, dtype=bool)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        where = ""
        if a.feature_names is not None and a.kind is InputKind.TABLE:
            cols = [a.feature_names[j] for j in np.unique(np.nonzero(bad)[1])]
            where = f" in column(s) {cols}"
        raise UserError(
            f"{name}: the features contain NaN or inf{where} ({len(rows)} row(s), first at row {rows[0]}). "
            "Fill or drop those rows before training."
        )
    if a.task.is_classification:
        if a.class_names is None or len(a.class_names) < 2:
            found = a.class_names or sorted(set(np.asarray(a.y).tolist()))
            raise UserError(f"{name}: the target has {len(found)} class(es) {found}; classification needs at least 2")
    elif not np.isfinite(a.y).all():
        raise UserError(f"{name}: the regression target contains NaN or inf")
    return a


def describe(a: Arrays, train_y: torch.Tensor, target_name: str) -> DataSpec:
    """The DataSpec of dataset `a`, whose train split has targets `train_y` (N,)."""
    columns = None
    if a.feature_names is not None and a.kind is InputKind.TABLE:
        inputs, categorical = a.input_columns or a.feature_names, a.categorical_columns or []
        columns = Columns(tuple(inputs), tuple(categorical), tuple(a.feature_names))
    mean, std, counts = 0.0, 1.0, None  # mean, std: no change for classification or a constant target
    if a.task.is_classification:
        counts = tuple(int(c) for c in torch.bincount(train_y.long(), minlength=len(a.class_names or [])))
    else:
        spread = float(train_y.double().std(correction=0))
        mean, std = float(train_y.double().mean()), spread if spread > 0 else 1.0
    return DataSpec(
        task=a.task,
        kind=a.kind,
        input_shape=a.input_shape,
        class_names=tuple(a.class_names) if a.task.is_classification and a.class_names else None,
        target_name=target_name,
        train_size=len(train_y),
        target_mean=mean,
        target_std=std,
        columns=columns,
        pixel_max=a.pixel_max,
        class_counts=counts,
    )
