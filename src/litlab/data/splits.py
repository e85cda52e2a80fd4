"""Which rows are train, val and test: seeded, stratified for classes, with k-fold cross-validation
of the train+val rows. Pure functions of the targets; SplitDataModule calls them once."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from litlab.errors import UserError
from litlab.values import is_int

MIN_REGRESSION_ROWS = 2  # r2 of one row is undefined (torchmetrics refuses it)
MAX_SEED = 2**32 - 1  # scikit-learn's and numpy's seeds are 32-bit


def rarest_class(y: np.ndarray) -> tuple[int, int]:
    """(class id, row count) of the least frequent class in `y`."""
    classes, counts = np.unique(y, return_counts=True)
    return int(classes[counts.argmin()]), int(counts.min())


def fractions_of(split: object) -> tuple[float, ...] | None:
    """`split` as numbers, or None where it is no list of finite numbers."""
    if isinstance(split, str | bytes) or not isinstance(split, Sequence):
        return None
    try:
        fractions = tuple(float(f) for f in split if not isinstance(f, bool | str))
    except (TypeError, ValueError):
        return None
    return fractions if len(fractions) == len(split) and all(map(math.isfinite, fractions)) else None


def checked_split(split: object, official_test: bool, name: str) -> tuple[float, float, float]:
    """`data.split` as three fractions, or a UserError saying what is valid."""
    fractions = fractions_of(split)
    if fractions is None or len(fractions) != 3 or fractions[0] <= 0 or fractions[1] <= 0 or fractions[2] < 0 \
            or abs(sum(fractions) - 1) > 1e-6:  # fmt: skip
        shown = list(fractions) if fractions is not None else split
        raise UserError(
            f"data.split={shown!r} is invalid: give three fractions [train, val, test] "
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


def checked_seed(seed: object, key: str = "data.seed") -> int:
    """`seed`, the setting `key` (`seed`, or `data.seed`, which defaults to it): an integer Lightning,
    scikit-learn and numpy all take as a seed."""
    if is_int(seed) and 0 <= seed <= MAX_SEED:
        return seed
    raise UserError(f"{key}={seed!r} is invalid: give an integer in 0..{MAX_SEED}, e.g. {key}=42")


def checked_folds(num_folds: object, fold: object) -> tuple[int, int]:
    """`data.num_folds` and `data.fold`: 0 (no cross-validation) or K >= 2, and a fold of 0..K-1."""
    ints = [v for v in (num_folds, fold) if is_int(v)]
    if len(ints) == 2 and ints[0] != 1 and ints[0] >= 0 and 0 <= ints[1] < max(ints[0], 1):
        return ints[0], ints[1]
    raise UserError(
        f"data.num_folds={num_folds!r}, data.fold={fold!r} is invalid: num_folds is 0 (no cross-validation) "
        "or K >= 2, and fold is one of 0..K-1, e.g. data.num_folds=5 data.fold=0"
    )


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
        """(train, val, test) row indices; each holds a row of every class, or a UserError names the class."""
        train_frac, val_frac, test_frac = self.split
        self._check_sizes(len(y))
        idx = np.arange(len(y))
        if self.num_test:
            rest, test = idx[: -self.num_test], idx[-self.num_test :]
        else:
            self._check_stratifiable(y, y, ["val", "test"])
            rest, test = train_test_split(idx, test_size=test_frac, random_state=self.seed, stratify=self._strata(y))
        if self.num_folds:
            train, val = self._fold(rest, y[rest], y)
        elif self.num_val:
            train, val = rest[: -self.num_val], rest[-self.num_val :]
        else:
            self._check_stratifiable(y[rest], y, ["val"])
            val_share = val_frac / (train_frac + val_frac)
            train, val = train_test_split(
                rest, test_size=val_share, random_state=self.seed, stratify=self._strata(y[rest])
            )
        self._check_every_class(y, {"train": train, "val": val, "test": test})
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

    def _drawn_shares(self) -> dict[str, float]:
        """The share of a class's rows that each split drawn here takes (given sets are not drawn)."""
        train_frac, val_frac, test_frac = self.split
        kept = 1.0 if self.num_test else 1 - test_frac  # what the test split leaves to train and val
        shares = {} if self.num_test else {"test": test_frac}
        if self.num_folds:
            shares.update(train=kept * (1 - 1 / self.num_folds), val=kept / self.num_folds)
        elif self.num_val:
            shares["train"] = 1.0
        else:
            train_share = train_frac / (train_frac + val_frac)
            shares.update(train=kept * train_share, val=kept * (1 - train_share))
        return shares

    def _too_few(self, class_id: int, count: int, missing: list[str]) -> UserError:
        """The one line for a class that the split leaves out of the `missing` splits."""
        shares = self._drawn_shares()
        given = [s for s in missing if s not in shares]
        if given:
            return UserError(
                f"class {self._label(class_id)!r} has no row in the {given[0]} set the data comes with (e.g. "
                f"data.path's {given[0]}/ folder): every split needs a row of every class; add rows of it there"
            )
        need = math.ceil(1 / min(shares.values()) - 1e-9)
        folds = f" with data.num_folds={self.num_folds}" if self.num_folds else ""
        return UserError(
            f"class {self._label(class_id)!r} has only {count} row(s), too few for data.split={list(self.split)}"
            f"{folds}, which puts none of them in {' and '.join(missing)}: a stratified split needs at least one "
            f"row of each class in each of train, val and test, about {need} of each class here; add rows of it, "
            "or drop or relabel them"
        )

    def _check_stratifiable(self, y: np.ndarray, everything: np.ndarray, missing: list[str]) -> None:
        """scikit-learn's stratified split of `y` needs 2 rows of each class: name the class that has fewer,
        and the splits (`missing`) it would be left out of."""
        if self.labels is None:
            return
        rare, count = rarest_class(y)
        if count < 2:
            raise self._too_few(rare, int((everything == rare).sum()), missing)

    def _check_every_class(self, y: np.ndarray, splits: dict[str, np.ndarray]) -> None:
        """Every class in every split: a split without one reports its metrics (AUROC, recall) as 0 or
        undefined, and a test accuracy without the class, as if the run were fine. The rarest class first."""
        if self.labels is None:
            return
        counts = np.bincount(y, minlength=len(self.labels))
        for class_id in np.argsort(counts, kind="stable"):
            missing = [name for name, rows in splits.items() if not (y[rows] == class_id).any()]
            if missing:
                raise self._too_few(int(class_id), int(counts[class_id]), missing)

    def _fold(self, rest: np.ndarray, y_rest: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fold `fold` of a seeded K-fold split of the train+val rows (stratified for
        classification): its val rows are that fold, its train rows the other K-1 folds."""
        k = self.num_folds
        splitter: KFold | StratifiedKFold
        if self.labels is not None:
            counts = np.bincount(y_rest, minlength=len(self.labels))
            rare = int(counts.argmin())
            count = int(counts[rare])
            if count < k:
                fix = f"use data.num_folds <= {count}" if count >= 2 else "add rows of it, or drop or relabel them"
                raise UserError(
                    f"data.num_folds={k} is too many: class {self._label(rare)!r} has only {count} train+val "
                    f"row(s) of its {int((y == rare).sum())}, so some folds would lack it; {fix}"
                )
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=self.seed)
        else:
            splitter = KFold(n_splits=k, shuffle=True, random_state=self.seed)
        train_pos, val_pos = list(splitter.split(rest, y_rest))[self.fold]
        return rest[train_pos], rest[val_pos]
