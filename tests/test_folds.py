"""k-fold cross-validation: data.num_folds=K data.fold=I."""

import numpy as np
import pytest
import torch

from litlab.data import DiabetesDataModule, DigitsDataModule, MNISTDataModule
from tests.helpers.data_files import write_mnist


def rows(t: torch.Tensor) -> list[bytes]:
    return [r.numpy().tobytes() for r in t.flatten(1)]


def fold_splits(make, k: int) -> list:
    splits = []
    for i in range(k):
        dm = make(i)
        dm.setup()
        splits.append({name: dm.split_tensors(name) for name in ("train", "val", "test")})
    return splits


def test_folds_are_disjoint_cover_train_val_and_are_stratified():
    k = 5
    splits = fold_splits(lambda i: DigitsDataModule(seed=3, num_folds=k, fold=i), k)
    plain = DigitsDataModule(seed=3)
    plain.setup()
    pool = rows(plain.split_tensors("train").x) + rows(plain.split_tensors("val").x)
    vals = [rows(s["val"].x) for s in splits]
    # the K validation folds partition the train+val rows: each row in exactly one fold
    assert sorted(sum(vals, [])) == sorted(pool)
    for s, val in zip(splits, vals, strict=True):
        # train is the other K-1 folds: together with val it is the whole pool, with no overlap
        assert sorted(rows(s["train"].x) + val) == sorted(pool)
        assert len(s["val"].y) in (len(pool) // k, len(pool) // k + 1)
        # the test set is the same fixed rows in every fold
        assert torch.equal(s["test"].x, plain.split_tensors("test").x)
        overall = np.bincount(plain.arrays.y, minlength=10) / len(plain.arrays.y)
        share = np.bincount(s["val"].y.numpy(), minlength=10) / len(s["val"].y)
        assert np.abs(share - overall).max() < 0.03  # stratified: every class in its share


def test_regression_folds_partition_too():
    splits = fold_splits(lambda i: DiabetesDataModule(num_folds=3, fold=i), 3)
    vals = sorted(sum((rows(s["val"].x) for s in splits), []))
    trains_and_vals = sorted(rows(splits[0]["train"].x) + rows(splits[0]["val"].x))
    assert vals == trains_and_vals and len(set(vals)) == len(vals)


def test_image_folds_keep_the_official_test_set(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw", n_train=100, n_test=20)
    splits = fold_splits(lambda i: MNISTDataModule(data_dir=str(tmp_path), download=False, num_folds=4, fold=i), 4)
    assert sum(len(s["val"].y) for s in splits) == 100  # the 100 official train images, each in one fold
    for s in splits:
        assert len(s["train"].y) == 75 and len(s["test"].y) == 20
        per_class = np.bincount(s["val"].y.numpy(), minlength=10)  # 10 of each class, 4 folds
        assert per_class.min() >= 2 and per_class.max() <= 3


@pytest.mark.parametrize(
    ("num_folds", "fold", "match"),
    [(1, 0, "num_folds=1"), (5, 5, "fold=5"), (-2, 0, "num_folds=-2"), (0, 2, "fold=2"), (200, 0, "too many")],
)
def test_bad_folds_are_named(num_folds, fold, match):
    with pytest.raises(ValueError, match=match):
        DigitsDataModule(num_folds=num_folds, fold=fold).setup()
