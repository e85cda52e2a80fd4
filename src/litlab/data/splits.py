"""Which rows are train, val and test: seeded, stratified for classes, with k-fold cross-validation
of the train+val rows. Pure functions of the targets; InMemoryDataModule calls them once."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from litlab.errors import UserError

MIN_REGRESSION_ROWS = 2  # r2 of one row is undefined (torchmetrics refuses it)


def rarest_class(y: np.ndarray) -> tuple[int, int]:
    """(class id, row count) of the least frequent class in `y`."""
    classes, counts = np.unique(y, return_counts=True)
    return int(classes[counts.argmin()]), int(counts.min())


def checked_split(split: Sequence[float], official_test: bool, name: str) -> tuple[float, float, float]:
    """`data.split` as three fractions, or a UserError saying what is valid."""
    fractions = tuple(float(f) for f in split)  # a list from YAML
    if len(fractions) != 3 or fractions[0] <= 0 or fractions[1] <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise UserError(
            f"data.split={list(fractions)} is invalid: give three fractions [train, val, test] "
            "that add up to 1, train and val positive, e.g. [0.7, 0.15, 0.15]"
        )
    if official_test and fractions[2] != 0:
        raise UserError(
            f"data.split={list(fractions)} is invalid for {name}: it has a fixed official test set, "
            "so give [train, val, 0], e.g. [0.9, 0.1, 0] (fractions of the official train set)"
        )
    if not official_test and fractions[2] <= 0:
        raise UserError(f"data.split={list(fractions)} is invalid: the test fraction must be > 0")
    return fractions[0], fractions[1], fractions[2]


@dataclass
class Splitter:
    """Splits rows by their targets `y`. `num_test`: the last rows are a fixed (official) test
    set. `labels`: class names, for errors; None for regression (no stratification)."""

    split: tuple[float, float, float]
    seed: int
    num_folds: int = 0
    fold: int = 0
    num_test: int = 0
    num_val: int = 0  # the num_val rows before the test rows are a given val set (unless k-fold)
    labels: list[str] | None = None

    def indices(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(train, val, test) row indices."""
        train_frac, val_frac, test_frac = self.split
        self._check_sizes(len(y))
        idx = np.arange(len(y))
        if self.num_test:
            rest, test = idx[: -self.num_test], idx[-self.num_test :]
        else:
            self._check_stratifiable(y, y)
            rest, test = train_test_split(idx, test_size=test_frac, random_state=self.seed, stratify=self._strata(y))
        if self.num_folds:
            train, val = self._fold(rest, y[rest])
        elif self.num_val:
            train, val = rest[: -self.num_val], rest[-self.num_val :]
        else:
            self._check_stratifiable(y[rest], y)
            val_share = val_frac / (train_frac + val_frac)
            train, val = train_test_split(
                rest, test_size=val_share, random_state=self.seed, stratify=self._strata(y[rest])
            )
        return train, val, test

    def _check_sizes(self, n: int) -> None:
        """Each split drawn by fraction must hold a row of every class (a stratified split needs it)
        and, for regression, 2 rows (r2 is undefined on one): one line before scikit-learn's error.
        Folds and given val or test sets are not drawn by fraction here."""
        train_frac, val_frac, test_frac = self.split
        sizes = {}
        rest = n - self.num_test
        if not self.num_test:
            sizes["test"] = math.ceil(test_frac * n)
            rest = n - sizes["test"]
        if not (self.num_val or self.num_folds):
            sizes["val"] = math.ceil(val_frac / (train_frac + val_frac) * rest)
            sizes["train"] = rest - sizes["val"]
        needed = len(self.labels) if self.labels is not None else MIN_REGRESSION_ROWS
        for name, size in sizes.items():
            if size < needed:
                what = f"the {needed} classes" if self.labels is not None else "the 2 rows r2 needs"
                raise UserError(
                    f"data.split={list(self.split)} on {n} rows gives the {name} split {size} row(s), fewer than "
                    f"{what}: add rows, or give that split a larger fraction"
                )

    def _strata(self, y: np.ndarray) -> np.ndarray | None:
        return y if self.labels is not None else None

    def _label(self, class_id: int) -> str:
        return self.labels[class_id] if self.labels else str(class_id)

    def _check_stratifiable(self, y: np.ndarray, everything: np.ndarray) -> None:
        """A stratified split needs 2 rows of each class on both sides: name the class that has fewer."""
        if self.labels is None:
            return
        rare, count = rarest_class(y)
        if count < 2:
            total = int((everything == rare).sum())
            raise UserError(
                f"class {self._label(rare)!r} has only {total} row(s), too few for a stratified "
                "train/val/test split (at least 3 of each class): add rows of it, or drop or relabel them"
            )

    def _fold(self, rest: np.ndarray, y_rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fold `fold` of a seeded K-fold split of the train+val rows (stratified for
        classification): its val rows are that fold, its train rows the other K-1 folds."""
        k = self.num_folds
        splitter: KFold | StratifiedKFold
        if self.labels is not None:
            rare, count = rarest_class(y_rest)
            if count < k:
                raise UserError(
                    f"data.num_folds={k} is too many: class {self._label(rare)!r} has only {count} train+val "
                    f"rows, so some folds would lack it; use data.num_folds <= {count}"
                )
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=self.seed)
        else:
            splitter = KFold(n_splits=k, shuffle=True, random_state=self.seed)
        train_pos, val_pos = list(splitter.split(rest, y_rest))[self.fold]
        return rest[train_pos], rest[val_pos]
