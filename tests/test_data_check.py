"""The data check before training: data_report.json in the run dir, a few console lines, and a
warning where the user should act (rows shared between splits, strongly imbalanced classes)."""

import json

import numpy as np
import pandas as pd

from litlab.data import CSVDataModule
from litlab.data.check import data_report, warnings_for
from litlab.run.train import train
from tests.helpers.data_files import write_csv


def leaky_table(folder, copies: int) -> str:
    """120 distinct rows, then the first `copies` of them again: the split puts some of each pair apart."""
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120), "const": 1.0, "y": np.arange(120) % 2})
    return write_csv(folder, pd.concat([df, df.head(copies)], ignore_index=True))


def test_rows_shared_between_splits_are_found_and_named(tmp_path):
    dm = CSVDataModule(leaky_table(tmp_path, copies=40), target="y")
    report = data_report(dm)
    shared = sum(d["rows"] for d in report["duplicates"].values())
    # Count the pairs split apart directly: a row of a later split whose features equal an earlier split's row.
    seen, expected = {}, 0
    for split in ("train", "val", "test"):
        rows = {tuple(r) for r in dm.split_tensors(split).x.numpy().round(6).tolist()}
        expected += sum(1 for r in rows if any(r in other for other in seen.values()))
        seen[split] = rows
    assert shared == expected > 0
    for pair, found in report["duplicates"].items():
        later = pair.split("-")[1]
        assert set(found[f"{later}_rows"]) <= set(dm.row_indices(later).tolist())
    assert report["constant_columns"] == ["const"]
    assert any("have the same content as train rows" in w for w in warnings_for(report))


def test_a_run_writes_its_data_report_and_a_clean_dataset_warns_of_nothing(make_cfg, tmp_path, caplog):
    with caplog.at_level("INFO"):
        train(make_cfg("data=breast_cancer", "model=logistic_regression", "logger=tensorboard"))
    report = json.loads((tmp_path / "data_report.json").read_text())
    assert report["rows"] == {"train": 397, "val": 86, "test": 86}
    assert report["per_class"]["train"] == {"malignant": 148, "benign": 249} and report["imbalance_ratio"] == 1.68
    assert report["duplicates"] == {} and warnings_for(report) == []
    assert "rows: train 397, val 86, test 86" in caplog.text
    assert not list(tmp_path.glob("*.part"))


def test_strongly_imbalanced_classes_are_a_warning(tmp_path):
    df = pd.DataFrame({"a": np.arange(220, dtype=float) * 0.37 % 1, "y": ["rare"] * 20 + ["common"] * 200})
    report = data_report(CSVDataModule(write_csv(tmp_path, df), target="y"))
    assert report["imbalance_ratio"] == 10.0
    assert any("class_weight=balanced" in w for w in warnings_for(report))
