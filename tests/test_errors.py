"""Bad input: one clear error, before training, naming the value and what would be valid."""

import warnings

import numpy as np
import pandas as pd
import pytest

from litlab.data import CSVDataModule
from litlab.errors import UserError
from litlab.run.train import train
from tests.helpers.data_files import write_csv


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        (["optimizer.lr=-0.1"], UserError, r"optimizer.lr=-0.1 is invalid.*> 0"),
        (["optimizer.lr=0"], UserError, r"optimizer.lr=0 is invalid"),
        (["data.batch_size=0"], UserError, r"data.batch_size=0 is invalid.*positive integer.*full"),
        (["data.batch_size=half"], UserError, r"data.batch_size='half' is invalid"),
        (["data.split=[0.5,0.2,0.2]"], UserError, r"data.split=\[0.5, 0.2, 0.2\] is invalid.*add up to 1"),
        (["data.scaling=zscore"], UserError, r"scaling='zscore'.*standard, minmax, none"),
        (["data=breast_cancer", "model=cnn"], UserError, r"cnn needs image data.*input_shape=\(30,\).*model=mlp"),
        (["data=diabetes", "model=logistic_regression"], UserError, r"logistic_regression needs a classification"),
        (["data=digits", "model=linear_regression"], UserError, r"linear_regression needs a regression target"),
        (["model.activation=swish"], UserError, r"model.activation='swish' is invalid; valid: relu"),
        (["model=mlp", "model.init=he"], UserError, r"model.init='he' is invalid"),
        (["monitor.metric=val/auroc"], UserError, r"monitor.metric='val/auroc'.*valid: val/loss, val/acc"),
        (["monitor.mode=up"], UserError, r"monitor.mode='up' is invalid; valid: auto, min, max"),
        (["monitor.metric=val/acc", "monitor.mode=min"], UserError, r"monitor.mode=min contradicts val/acc.*higher"),
        (["monitor.metric=val/brier"], UserError, r"monitor.metric='val/brier'.*valid: val/loss, val/acc"),
        (["model=logistic_regression", "model.C=0"], UserError, r"model.C=0 is invalid: C must be > 0.*null"),
        (["data=diabetes", "model=linear_regression", "model.alpha=-1"], UserError, r"model.alpha=-1 is invalid"),
        (["data=csv", "data.path=/nonexistent.csv", "data.target=y"], UserError, r"/nonexistent.csv"),
    ],
)
def test_bad_config_fails_before_training(make_cfg, tmp_path, overrides, error, match):
    cfg = make_cfg(*overrides)
    with pytest.raises(error, match=match):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists()  # nothing was trained


def test_csv_unreadable(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x81" * 100)
    with pytest.raises(ValueError, match="is not valid utf-8.*data.encoding=latin-1"):
        _ = CSVDataModule(str(path), target="y").task
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="could not be read as CSV"):
        _ = CSVDataModule(str(empty), target="y").task


def test_csv_missing_target_lists_columns(tmp_path):
    path = write_csv(tmp_path, pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}))
    with pytest.raises(ValueError, match=r"data.target='label' is not a column.*\['a', 'b'\]"):
        _ = CSVDataModule(path, target="label").task


def test_csv_target_with_one_class(tmp_path):
    path = write_csv(tmp_path, pd.DataFrame({"a": np.arange(20.0), "y": ["yes"] * 20}))
    with pytest.raises(ValueError, match=r"1 class\(es\) \['yes'\].*at least 2"):
        _ = CSVDataModule(path, target="y").task


def test_nan_or_inf_in_features_names_the_column(tmp_path):
    for bad in (np.nan, np.inf):
        a = np.arange(20.0)
        a[7] = bad
        path = write_csv(tmp_path, pd.DataFrame({"a": np.arange(20.0), "b": a, "y": np.arange(20) % 2}))
        with pytest.raises(ValueError, match=r"NaN or inf in column\(s\) \['b'\].*first at row 7"):
            _ = CSVDataModule(path, target="y").task


def test_a_value_past_float32s_range_is_named_without_a_warning(tmp_path):
    """1e300 is inf as float32: named as one, and numpy's overflow RuntimeWarning is not raised
    (tests/test_quiet.py checks the console of the whole command)."""
    table = tmp_path / "big.csv"
    table.write_text("a,b,y\n1e300,2,0\n" + "".join(f"{i},{i + 1},{i % 2}\n" for i in range(40)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match=r"NaN or inf in column\(s\) \['a'\]"):
            _ = CSVDataModule(str(table), target="y").task
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]


@pytest.mark.e2e
def test_diverging_loss_stops_the_run(make_cfg):
    cfg = make_cfg("data=synthetic_regression", "model=linear_regression", "optimizer=sgd", "optimizer.lr=1e6")
    with pytest.raises(FloatingPointError, match=r"train/loss became (nan|inf).*Lower optimizer.lr"):
        train(cfg)


@pytest.mark.e2e
def test_a_finished_run_dir_is_never_overwritten(make_cfg, tmp_path):
    cfg = make_cfg("debug=fast_dev_run")
    train(cfg)
    before = (tmp_path / "metrics.json").read_text()
    with pytest.raises(UserError, match="already holds a finished run"):
        train(make_cfg("debug=fast_dev_run"))
    assert (tmp_path / "metrics.json").read_text() == before
