"""The data contract: what a DataModule tells the rest of litlab about its data (torch-free: the
bundle runtime reads it too). The three learning tasks a dataset can declare, and what follows from
each; the two kinds of input; a table's columns; the scaler's statistics as prediction applies them.

Every DataModule gives a `DataSpec` (its `spec` property). The model is built from it
(run.build.build_model), predictions and figures read it (inference.checkpoint, run.evaluate,
review.figures_callback), and it goes into each checkpoint (the DataModule's state) and each
bundle (bundle.json's `data`) in one form, `to_state`, so that new inputs are preprocessed
without the training data. Nothing outside the data package looks at array dimensions to find out
what the data is: it reads `kind`.

A DataModule that does not hold its data in memory (files streamed from disk) gives the same
description; only `train_size` and the target's statistics need a pass over the train split.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

import numpy as np

from litlab.errors import UserError


class Task(StrEnum):
    """What the target is. The DataModule decides it; models and metrics follow."""

    REGRESSION = "regression"
    BINARY = "binary"
    MULTICLASS = "multiclass"

    @property
    def is_classification(self) -> bool:
        return self is not Task.REGRESSION

    @classmethod
    def parse(cls, value: str) -> "Task":
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(t.value for t in cls)
            raise UserError(f"task={value!r} is not a task; valid tasks are: {valid}") from None


class InputKind(StrEnum):
    """What one input is: a row of features, or an image."""

    TABLE = "table"  # (F,) features
    IMAGE = "image"  # (C, H, W) pixels

    @property
    def dims(self) -> int:
        """The number of dimensions of one input."""
        return 1 if self is InputKind.TABLE else 3


@dataclass(frozen=True)
class Columns:
    """A table's columns: the source columns before encoding, which of them were one-hot encoded,
    and the encoded features the network sees, in its input order."""

    inputs: tuple[str, ...]
    categorical: tuple[str, ...]
    features: tuple[str, ...]

    @cached_property
    def one_hot(self) -> dict[str, dict[str, str]]:
        """Per categorical column, the feature of each category seen in training: read off the feature
        names pandas.get_dummies gave (`<column>_<category>`); the longest categorical column name
        that prefixes a feature owns it."""
        maps: dict[str, dict[str, str]] = {c: {} for c in self.categorical}
        by_length = sorted(self.categorical, key=len, reverse=True)
        for feature in self.features:
            if feature in self.inputs and feature not in self.categorical:
                continue  # a numeric column keeps its name
            owner = next((c for c in by_length if feature.startswith(f"{c}_")), None)
            if owner is not None:
                maps[owner][feature[len(owner) + 1 :]] = feature
        return maps


@dataclass(frozen=True)
class DataSpec:
    """The task, the kind and shape of one input, the classes, the table's columns or the images'
    pixel range, and the target's scale. Frozen: decided once by the DataModule."""

    task: Task
    kind: InputKind
    input_shape: tuple[int, ...]  # (F,) or (C, H, W)
    class_names: tuple[str, ...] | None = None  # classification: index = class id
    target_name: str = "target"  # what the figures call the regression target
    train_size: int = 0  # rows in the train split (penalties in scikit-learn's terms are per row)
    target_mean: float = 0.0  # regression: the train split's target mean, which the model subtracts
    target_std: float = 1.0  # ... and standard deviation (ddof 0), which it divides by
    columns: Columns | None = None  # tables read from named columns (CSV, scikit-learn sets)
    pixel_max: float | None = None  # images: the brightest raw pixel value (255 for uint8 files)
    class_counts: tuple[int, ...] | None = None  # classification: the train split's rows per class

    def __post_init__(self) -> None:
        if len(self.input_shape) != self.kind.dims:
            raise ValueError(f"DataSpec: a {self.kind} input has {self.kind.dims} dims, not {self.input_shape}")
        if self.task.is_classification and (self.class_names is None or len(self.class_names) < 2):
            raise ValueError(f"DataSpec: {self.task} data needs 2+ class_names, not {self.class_names}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names or ()) if self.task.is_classification else 0

    @property
    def num_outputs(self) -> int:
        """Width of the network's last layer: one logit for binary, one value for regression."""
        return self.num_classes if self.task is Task.MULTICLASS else 1

    def to_state(self) -> dict:
        """Plain values (str, int, float, lists, dicts): what checkpoints loaded with weights_only=True can
        hold, and JSON (bundle.json's `data`)."""
        state = asdict(self)
        state.update(task=self.task.value, kind=self.kind.value, input_shape=list(self.input_shape))
        state["class_names"] = list(self.class_names) if self.class_names is not None else None
        state["class_counts"] = list(self.class_counts) if self.class_counts is not None else None
        if self.columns is not None:
            state["columns"] = {k: list(v) for k, v in asdict(self.columns).items()}
        return state

    @classmethod
    def from_state(cls, state: Mapping) -> "DataSpec":
        """The spec of `to_state`'s form, from a checkpoint's DataModule state or a bundle's bundle.json."""
        columns = state.get("columns")
        return cls(
            task=Task(state["task"]),
            kind=InputKind(state["kind"]),
            input_shape=tuple(state["input_shape"]),
            class_names=tuple(state["class_names"]) if state.get("class_names") is not None else None,
            target_name=state.get("target_name", "target"),
            train_size=int(state.get("train_size", 0)),
            target_mean=float(state.get("target_mean", 0.0)),
            target_std=float(state.get("target_std", 1.0)),
            columns=Columns(*(tuple(columns[k]) for k in ("inputs", "categorical", "features"))) if columns else None,
            pixel_max=float(state["pixel_max"]) if state.get("pixel_max") is not None else None,
            class_counts=tuple(state["class_counts"]) if state.get("class_counts") is not None else None,
        )


@dataclass(frozen=True, eq=False)
class ScalerStats:
    """The scaler fitted on the train split, as prediction applies it: `(x - shift) / scale` in float32.
    `shift`/`scale`: (F,) for tables, (C, 1, 1) for images (one statistic per channel), or (1,) for
    data.scaling=none. Kept beside the DataSpec: a checkpoint's DataModule state and a bundle hold both."""

    method: str
    shift: np.ndarray
    scale: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The network's input for raw inputs `x` (N, ...), as data/scaling.py's Scaler computes it."""
        return (x.astype(np.float32) - self.shift) / self.scale

    def to_state(self) -> dict[str, Any]:
        return {"method": self.method, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "ScalerStats":
        shift, scale = (np.asarray(state[k], dtype=np.float32) for k in ("shift", "scale"))
        return cls(str(state["method"]), shift, scale)


def from_datamodule_state(state: Mapping) -> DataSpec:
    """The DataSpec in a checkpoint's DataModule state, also one written before the DataSpec
    existed: the same facts under separate keys, where only tables had input columns."""
    if "spec" in state:
        return DataSpec.from_state(state["spec"])
    table = state.get("input_columns") is not None
    columns = None
    if table:
        categorical = tuple(state.get("categorical_columns") or ())
        columns = Columns(tuple(state["input_columns"]), categorical, tuple(state["feature_names"]))
    task = Task(state["task"])
    return DataSpec(
        task=task,
        kind=InputKind.TABLE if table else InputKind.IMAGE,
        input_shape=tuple(state["input_shape"]),
        class_names=tuple(state["class_names"]) if task.is_classification else None,
        columns=columns,
        pixel_max=state.get("pixel_max"),
    )
