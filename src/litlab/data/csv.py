"""Bring your own table: a CSV file with one target column."""

from pathlib import Path

import numpy as np
import pandas as pd

from litlab.data.base import Arrays, InMemoryDataModule
from litlab.task import Task

TARGET_TYPES = ("auto", "regression", "classification")
MAX_AUTO_CLASSES = 20  # an integer target with at most this many distinct values is taken as class ids


class CSVDataModule(InMemoryDataModule):
    """Features and target from a CSV file.

    Non-numeric feature columns are one-hot encoded. String (or bool) targets are
    classification, with labels mapped to class ids in sorted order; an integer target
    with at most 20 distinct values is classification too; anything else is regression.
    `target_type` (regression or classification) overrides that guess.
    """

    def __init__(
        self,
        path: str,
        target: str,
        target_type: str = "auto",
        split: tuple[float, float, float] = (0.7, 0.15, 0.15),
        seed: int = 42,
        scaling: str = "standard",
        batch_size: int | str = 64,
        device: str = "auto",
        num_folds: int = 0,
        fold: int = 0,
    ) -> None:
        if target_type not in TARGET_TYPES:
            raise ValueError(f"data.target_type={target_type!r} is invalid; valid: {', '.join(TARGET_TYPES)}")
        if not Path(path).is_file():
            raise FileNotFoundError(f"data.path={path!r}: no such file. Give the path to a CSV file.")
        # Absolute, so that evaluate.py finds the file from the checkpoint's hparams in any working dir.
        path = str(Path(path).resolve())
        super().__init__(split, seed, scaling, batch_size, device, num_folds, fold)
        self.path, self.target, self.target_type = path, target, target_type

    def load(self) -> Arrays:
        try:
            df = pd.read_csv(self.path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
            raise ValueError(f"data.path={self.path!r} could not be read as CSV: {e}") from e
        if self.target not in df.columns:
            raise ValueError(f"data.target={self.target!r} is not a column of {self.path}; columns: {list(df.columns)}")
        y_raw = df.pop(self.target)
        if df.shape[1] == 0:
            raise ValueError(f"{self.path} has no feature columns besides the target {self.target!r}")
        if y_raw.isna().any():
            raise ValueError(
                f"data.target={self.target!r} has {int(y_raw.isna().sum())} missing value(s); "
                "drop those rows or fill them"
            )
        categorical = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
        features = pd.get_dummies(df, columns=categorical, dtype="float32")
        columns = {"input_columns": list(df.columns), "categorical_columns": categorical}
        x = features.to_numpy(dtype="float32")

        if self._is_classification(y_raw):
            classes, y = np.unique(y_raw.astype(str) if y_raw.dtype == object else y_raw, return_inverse=True)
            task = Task.BINARY if len(classes) == 2 else Task.MULTICLASS
            return Arrays(x, y, task, list(classes), list(features.columns), **columns)
        if not pd.api.types.is_numeric_dtype(y_raw):
            raise ValueError(
                f"data.target={self.target!r} is not numeric (dtype {y_raw.dtype}), so it cannot be a "
                "regression target; use data.target_type=classification or auto"
            )
        return Arrays(x, y_raw.to_numpy("float32"), Task.REGRESSION, feature_names=list(features.columns), **columns)

    def _is_classification(self, y: pd.Series) -> bool:
        if self.target_type != "auto":
            return self.target_type == "classification"
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            return True
        integral = pd.api.types.is_integer_dtype(y) or bool((y == y.round()).all())
        return integral and y.nunique() <= MAX_AUTO_CLASSES
