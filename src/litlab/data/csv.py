"""Bring your own table: a CSV file with one target column."""

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from typing_extensions import Unpack, override

from litlab.data import fingerprint
from litlab.data.arrays import Arrays
from litlab.data.base import DataArgs, SplitDataModule
from litlab.data_spec import InputKind, Task
from litlab.errors import UserError
from litlab.readers.tables import read_table  # one reader of CSV files, training's and prediction's

log = logging.getLogger(__name__)

TARGET_TYPES = ("auto", "regression", "classification")
MISSING_TARGET = ("error", "drop")
MAX_AUTO_CLASSES = 20  # an integer target with at most this many distinct values is taken as class ids
MAX_CATEGORIES = 50  # a categorical feature with more distinct values gets a warning


def empty_cells(values: pd.Series) -> tuple[np.ndarray, str]:
    """Which cells of a column read by read_table are missing or only spaces (N,), and the first of
    their lines in the file, for a message ("5, 12"; line 1 is the header)."""
    missing = values.isna().to_numpy()
    if values.dtype == object:
        missing |= (values.astype(str).str.strip() == "").to_numpy()
    lines = [int(i) + 2 for i in np.flatnonzero(missing)]
    shown = ", ".join(map(str, lines[:5])) + (f" and {len(lines) - 5} more" if len(lines) > 5 else "")
    return missing, shown


class CSVDataModule(SplitDataModule):
    """Features and target from a CSV file.

    String values are stripped of surrounding whitespace. `drop_columns` removes columns,
    `features` keeps only the listed ones. Non-numeric feature columns are one-hot encoded.
    String (or bool) targets are classification, with labels mapped to class ids in sorted
    order; an integer target with at most 20 distinct values is classification too; anything
    else is regression. `target_type` (regression or classification) overrides that guess.
    Columns that look like IDs, categorical features with many values and categories that
    differ only by case get a warning naming them.
    """

    def __init__(
        self,
        path: str,
        target: str,
        target_type: str = "auto",
        features: list[str] | None = None,
        drop_columns: list[str] | None = None,
        encoding: str = "utf-8",
        delimiter: str | None = None,
        missing_target: str = "error",
        **shared: Unpack[DataArgs],
    ) -> None:
        if target_type not in TARGET_TYPES:
            raise UserError(f"data.target_type={target_type!r} is invalid; valid: {', '.join(TARGET_TYPES)}")
        if missing_target not in MISSING_TARGET:
            valid = ", ".join(MISSING_TARGET)
            raise UserError(f"data.missing_target={missing_target!r} is invalid; valid: {valid}")
        if delimiter is not None and len(delimiter) != 1:
            raise UserError(f"data.delimiter={delimiter!r} is invalid: give one character, e.g. ';', or null (detect)")
        for key, names in (("data.features", features), ("data.drop_columns", drop_columns)):
            if names is not None and (isinstance(names, str) or not isinstance(names, Sequence)):
                raise UserError(f"{key}={names!r} is invalid: give a list of column names, e.g. [age, bmi], or null")
        path = str(path)  # a number from the command line is a file name too
        if not Path(path).is_file():
            what = "is a folder" if Path(path).is_dir() else "no such file"
            raise UserError(f"data.path={path!r}: {what}. Give the path to a CSV file.")
        # Absolute, so that evaluate.py finds the file from the checkpoint's hparams in any working dir.
        path = str(Path(path).resolve())
        super().__init__(**shared)
        self.path, self.target, self.target_type, self.encoding = path, target, target_type, encoding
        self.target_name = target
        self.delimiter, self.missing_target = delimiter, missing_target
        self.features = None if features is None else list(features)
        self.drop_columns = list(drop_columns or [])

    location_key = "data.path"

    @override
    def source_files(self) -> list[Path]:
        return [Path(self.path)]

    @override
    def load(self) -> Arrays:
        # The file's sha256 (the fingerprint) in a second thread while pandas parses it: both let go
        # of the GIL, and on a large file the hash would otherwise add a tenth of the read.
        with ThreadPoolExecutor(max_workers=1) as pool:
            hashed = pool.submit(fingerprint.of_files, self.source_files(), self.location_key)
            df = read_table(self.path, self.encoding, delimiter=self.delimiter)
            self._fingerprint = hashed.result()
        if df.empty:
            raise UserError(f"data.path={self.path!r} has a header but no data rows; give a file with rows")
        df = self._without_missing_targets(self._select_columns(df))
        y_raw = df.pop(self.target)
        blank = [c for c in df.columns if df[c].isna().all()]
        if blank:  # no value to fill in from, and dropping its rows would drop them all
            raise UserError(f"data.path={self.path!r}: column(s) {blank} are empty in every row; leave them out with "
                            f"data.drop_columns=[{','.join(map(str, blank))}]")  # fmt: skip
        categorical = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
        warn_about_columns(df, categorical)
        features = pd.get_dummies(df, columns=categorical, dtype="float32") if categorical else df  # no copy
        columns: dict[str, Any] = {
            "input_columns": list(df.columns),
            "categorical_columns": categorical,
            "source_rows": df.index.to_numpy(),  # the file's data rows that remain (missing targets dropped)
        }
        with np.errstate(over="ignore"):  # past float32's range is inf, which Arrays' check names in one line
            x = features.to_numpy(dtype="float32")

        if self._is_classification(y_raw):
            classes, y = np.unique(y_raw.astype(str) if y_raw.dtype == object else y_raw, return_inverse=True)
            self._check_classes(y_raw, classes)
            task = Task.BINARY if len(classes) == 2 else Task.MULTICLASS
            return Arrays(x, y, task, InputKind.TABLE, list(classes), list(features.columns), **columns)
        if not pd.api.types.is_numeric_dtype(y_raw):
            raise UserError(
                f"data.target={self.target!r} is not numeric (dtype {y_raw.dtype}), so it cannot be a "
                "regression target; use data.target_type=classification or auto"
            )
        y = y_raw.to_numpy("float32")
        return Arrays(x, y, Task.REGRESSION, InputKind.TABLE, feature_names=list(features.columns), **columns)

    def _without_missing_targets(self, df: pd.DataFrame) -> pd.DataFrame:
        """`df` without the rows whose target is empty or only spaces (data.missing_target=drop),
        or a UserError naming their lines (error, the default)."""
        missing, shown = empty_cells(df[self.target])
        if not missing.any():
            return df
        if self.missing_target == "error":
            raise UserError(
                f"data.target={self.target!r} is empty on {missing.sum()} line(s) of {self.path} ({shown}); fill them, "
                "or leave those rows out with data.missing_target=drop"
            )
        log.warning("left out %d row(s) without a %r value (lines %s)", missing.sum(), self.target, shown)
        return df[~missing]

    def _select_columns(self, df: pd.DataFrame) -> pd.DataFrame:
        """The target and the feature columns: all but `drop_columns`, or only `features`."""
        columns = list(df.columns)
        for key, names in (("data.drop_columns", self.drop_columns), ("data.features", self.features or [])):
            unknown = [n for n in names if n not in columns]
            if unknown:
                raise UserError(f"{key}: no column(s) {unknown} in {self.path}; columns: {columns}")
        if self.target not in columns:
            raise UserError(f"data.target={self.target!r} is not a column of {self.path}; columns: {columns}")
        if self.target in self.drop_columns or self.target in (self.features or []):
            raise UserError(f"data.target={self.target!r} is also listed as a feature or dropped column; remove it")
        dropped = [*self.drop_columns, self.target]
        kept = self.features if self.features is not None else [c for c in columns if c not in dropped]
        if not kept:
            raise UserError(f"{self.path} has no feature columns besides the target {self.target!r}")
        wanted = [*kept, self.target]
        return df if wanted == columns else df[wanted]  # a selection copies the whole table

    def _is_classification(self, y: pd.Series) -> bool:
        if self.target_type != "auto":
            return self.target_type == "classification"
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            return True
        integral = pd.api.types.is_integer_dtype(y) or bool((y == y.round()).all())
        return integral and y.nunique() <= MAX_AUTO_CLASSES

    def _check_classes(self, y: pd.Series, classes: np.ndarray) -> None:
        if len(classes) == len(y) > 2:
            raise UserError(
                f"data.target={self.target!r} has {len(y)} classes with one row each; is it an ID column? "
                "Give another data.target"
            )
        if y.dtype == object:
            warn_case_variants(self.target, y)


def warn_about_columns(df: pd.DataFrame, categorical: list[str]) -> None:
    """One warning per feature column that is probably a mistake to train on."""
    for column in df.columns:
        values = df[column]
        id_like = pd.api.types.is_integer_dtype(values) or column in categorical
        if id_like and len(values) > 2 and values.nunique() == len(values):
            log.warning(
                "feature %r has a different value in every row (%d): is it an ID column? "
                "Leave it out with data.drop_columns=[%s]",
                column,
                len(values),
                column,
            )
        elif column in categorical and values.nunique() > MAX_CATEGORIES:
            log.warning(
                "categorical feature %r has %d distinct values, one-hot encoded into as many columns; "
                "leave it out with data.drop_columns=[%s] if it is not a category",
                column,
                values.nunique(),
                column,
            )
        if column in categorical:
            warn_case_variants(column, values)


def warn_case_variants(column: str, values: pd.Series) -> None:
    """Warn about categories that differ only by case ('F' and 'f'): they stay separate."""
    distinct = pd.Series(values.dropna().astype(str).unique())
    for _, group in distinct.groupby(distinct.str.lower()):
        if len(group) > 1:
            log.warning(
                "column %r has categories that differ only by case: %s; they are kept apart. "
                "If they mean the same, make them equal in the file",
                column,
                " and ".join(repr(v) for v in sorted(group)),
            )
