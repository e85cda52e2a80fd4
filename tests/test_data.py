"""DataModules: splits, scaling, fast batches, CSV parsing, checkpointed state."""

import numpy as np
import pandas as pd
import pytest
import torch

from litlab.data import BreastCancerDataModule, CSVDataModule, DigitsDataModule, SyntheticRegressionDataModule
from litlab.data_spec import Task
from tests.helpers.data_files import write_csv


def test_split_is_70_15_15_stratified_and_disjoint():
    dm = DigitsDataModule(seed=0)
    dm.setup()
    sizes = {name: len(dm.split_tensors(name).y) for name in ("train", "val", "test")}
    assert sum(sizes.values()) == 1797
    assert abs(sizes["train"] / 1797 - 0.7) < 0.01 and abs(sizes["test"] / 1797 - 0.15) < 0.01
    overall = np.bincount(dm.arrays.y) / 1797
    for name in ("train", "val", "test"):
        share = np.bincount(dm.split_tensors(name).y.numpy(), minlength=10) / sizes[name]
        assert np.abs(share - overall).max() < 0.02  # each class in the same proportion everywhere
    # disjoint by row identity (digits has exact duplicate images, so contents alone cannot tell):
    # each source row in exactly one split, and each split holds the contents of its own rows
    rows = {name: dm.row_indices(name) for name in ("train", "val", "test")}
    assert np.array_equal(np.sort(np.concatenate(list(rows.values()))), np.arange(1797))
    for name, idx in rows.items():
        assert np.array_equal(dm.split_tensors(name).x.numpy(), dm.arrays.held[idx].astype(np.float32))


def test_split_depends_on_seed_only():
    a, b, c = DigitsDataModule(seed=1), DigitsDataModule(seed=1), DigitsDataModule(seed=2)
    for dm in (a, b, c):
        dm.setup()
    assert torch.equal(a.split_tensors("test").y, b.split_tensors("test").y)
    assert not torch.equal(a.split_tensors("test").x, c.split_tensors("test").x)


def test_scaling_is_fitted_on_train_only_and_applied_per_batch():
    dm = BreastCancerDataModule(scaling="standard", batch_size="full")
    dm.setup()
    ((x_train, _),) = list(dm.train_dataloader())
    assert x_train.mean(0).abs().max() < 1e-4 and (x_train.std(0) - 1).abs().max() < 1e-2
    raw_train = dm.split_tensors("train").x
    assert torch.allclose(dm.scaler.shift, raw_train.mean(0))
    ((x_test, _),) = list(dm.test_dataloader())
    assert x_test.mean(0).abs().max() > 1e-3  # test statistics were not used

    mm = BreastCancerDataModule(scaling="minmax", batch_size="full")
    ((x, _),) = list(mm.train_dataloader())
    assert x.min() == 0 and x.max() == 1


def test_images_are_scaled_per_channel():
    dm = DigitsDataModule()
    dm.setup()
    assert dm.scaler.shift.shape == (1, 1, 1)  # one statistic for the one channel


@pytest.mark.parametrize("budget", [1 << 30, 0], ids=["scaled-once", "scaled-per-batch"])
def test_batches_are_the_scaled_rows_of_the_permutation(budget, monkeypatch):
    """Whether the DataModule keeps a scaled copy (it fits the budget) or scales each batch, a
    batch is the scaler applied to the raw rows the epoch's order picks."""
    monkeypatch.setattr("litlab.data.split_copies.PRESCALED_BYTES", budget)
    dm = DigitsDataModule(batch_size=64)
    loader = dm.train_dataloader()
    assert (loader.transform is None) == (budget > 0)
    raw = dm.split_tensors("train")
    order = loader.indices()
    for i, (x, y) in enumerate(loader):
        rows = order[i * 64 : (i + 1) * 64]
        assert x.dtype == torch.float32 and torch.allclose(x, dm.scaler(raw.x[rows]))
        assert torch.equal(y, raw.y[rows])
    ((x_val, _),) = list(DigitsDataModule(batch_size="full").val_dataloader())
    assert torch.allclose(x_val, dm.scaler(dm.split_tensors("val").x))


def test_a_restored_scaler_reaches_loaders_built_before_it():
    dm = DigitsDataModule(batch_size="full")
    loader = dm.train_dataloader()  # scaled with this module's own statistics
    other = DigitsDataModule(batch_size="full", seed=7)
    other.setup()
    assert not torch.equal(other.scaler.shift, dm.scaler.shift)
    assert dm.scaler.holds(dm.state_dict()["scaler"]) and not dm.scaler.holds(other.state_dict()["scaler"])
    assert not DigitsDataModule().scaler.holds(dm.state_dict()["scaler"])  # not fitted yet
    dm.load_state_dict(other.state_dict())
    ((x, _),) = list(loader)
    assert torch.allclose(x, other.scaler(dm.split_tensors("train").x))  # a full batch: the split in order


def test_batch_sizes_full_online_and_reshuffled_each_epoch():
    dm = BreastCancerDataModule(batch_size="full")
    assert len(dm.train_dataloader()) == 1
    online = BreastCancerDataModule(batch_size=1)
    n = len(online.split_tensors("train").y)
    assert len(online.train_dataloader()) == n
    dm = DigitsDataModule(batch_size=64)
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(batches) == len(loader) == -(-len(dm.split_tensors("train").y) // 64)
    assert sum(len(y) for _, y in batches) == len(dm.split_tensors("train").y)
    first, again = next(iter(loader))[1], next(iter(loader))[1]
    assert torch.equal(first, again)  # the order is a function of (seed, epoch)...
    loader.epoch = lambda: 1  # ...and the epoch is the trainer's
    assert not torch.equal(first, next(iter(loader))[1])
    val = [y for _, y in dm.val_dataloader()]
    assert torch.equal(torch.cat(val), dm.split_tensors("val").y)  # val is not shuffled


def test_state_dict_restores_preprocessing():
    dm = BreastCancerDataModule(seed=3)
    dm.setup()
    fresh = BreastCancerDataModule(seed=3)
    fresh.load_state_dict(dm.state_dict())
    fresh.setup()
    assert torch.equal(fresh.scaler.shift, dm.scaler.shift)
    assert dm.state_dict()["spec"]["class_names"] == ["malignant", "benign"]
    assert dm.state_dict()["spec"]["columns"]["features"][0] == "mean radius"


def test_synthetic_regression_is_seeded():
    a, b = SyntheticRegressionDataModule(seed=5), SyntheticRegressionDataModule(seed=5)
    assert np.array_equal(a.arrays.y, b.arrays.y)
    assert a.task is Task.REGRESSION and a.spec.input_shape == (5,)
    sine = SyntheticRegressionDataModule(function="sine", input_dim=1, noise=0.0)
    x, y = sine.arrays.x[:, 0], sine.arrays.y
    assert np.allclose(y, np.sin(x * sine.true_weight[0]), atol=1e-5)


def test_csv_one_hot_and_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "size": rng.normal(size=60),
            "colour": rng.choice(["red", "green", "blue"], size=60),
            "species": rng.choice(["setosa", "virginica", "versicolor"], size=60),
        }
    )
    dm = CSVDataModule(write_csv(tmp_path, df), target="species")
    assert dm.task is Task.MULTICLASS and dm.spec.num_outputs == 3
    assert dm.class_names == ["setosa", "versicolor", "virginica"]
    assert dm.arrays.feature_names == ["size", "colour_blue", "colour_green", "colour_red"]
    assert [dm.class_names[i] for i in dm.arrays.y[:5]] == df.species[:5].tolist()
    assert dm.arrays.x[:, 1:].sum(1).tolist() == [1.0] * 60  # exactly one colour per row


def test_csv_task_inference_and_override(tmp_path):
    x = np.arange(50, dtype=float)
    path = write_csv(tmp_path, pd.DataFrame({"x": x, "cls": (x % 2).astype(int), "y": x * 0.37}))
    assert CSVDataModule(path, target="cls").task is Task.BINARY
    assert CSVDataModule(path, target="y").task is Task.REGRESSION
    assert CSVDataModule(path, target="cls", target_type="regression").task is Task.REGRESSION


def test_csv_path_is_stored_absolute_for_evaluation(tmp_path, monkeypatch):
    write_csv(tmp_path, pd.DataFrame({"a": np.arange(20.0), "y": np.arange(20) % 2}))
    monkeypatch.chdir(tmp_path)
    dm = CSVDataModule("t.csv", target="y")
    assert dm.hparams["path"] == str(tmp_path / "t.csv")
