"""Real CSV files just work: whitespace, ID columns, case variants, rare classes, encodings,
column selection, and a messy table trained end to end against scikit-learn."""

import json
import logging

import numpy as np
import pandas as pd
import pytest

from litlab.data import CSVDataModule
from litlab.evaluation.reference import fit_reference, scores_on_test
from litlab.inference.restore import restore
from litlab.run.train import train
from tests.helpers.config import QUICK, ROOT
from tests.helpers.data_files import write_csv


def table(n: int = 60, seed: int = 0, **columns) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), **columns})


def warnings_of(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_whitespace_is_stripped_from_labels_and_values(tmp_path):
    labels = ["N", "N ", " Y", "Y"] * 15
    colour = ["red", " red", "blue ", "blue"] * 15
    dm = CSVDataModule(write_csv(tmp_path, table(colour=colour, label=labels)), target="label")
    assert dm.class_names == ["N", "Y"]
    assert dm.arrays.feature_names == ["a", "b", "colour_blue", "colour_red"]


def test_drop_columns_and_features_choose_the_columns(tmp_path):
    path = write_csv(tmp_path, table(ID=np.arange(60), c=np.ones(60), y=np.arange(60) % 2))
    assert CSVDataModule(path, "y", drop_columns=["ID", "c"]).arrays.feature_names == ["a", "b"]
    assert CSVDataModule(path, "y", features=["b"]).arrays.feature_names == ["b"]
    for kwargs, key in (({"drop_columns": ["id"]}, "drop_columns"), ({"features": ["a", "zz"]}, "features")):
        listed = r"columns: \['a', 'b', 'ID', 'c', 'y'\]"
        with pytest.raises(ValueError, match=rf"data.{key}: no column\(s\) \[.*\].*{listed}"):
            _ = CSVDataModule(path, "y", **kwargs).task


def test_an_id_column_warns_as_a_feature_and_fails_as_a_target(tmp_path, caplog):
    df = table(patient=[f"P{i:03d}" for i in range(60)], ID=np.arange(1000, 1060), y=np.arange(60) % 2)
    path = write_csv(tmp_path, df)
    with caplog.at_level(logging.WARNING):
        _ = CSVDataModule(path, "y").task
    assert "feature 'ID' has a different value in every row (60): is it an ID column?" in warnings_of(caplog)
    assert "data.drop_columns=[patient]" in warnings_of(caplog)
    assert "'a'" not in warnings_of(caplog)  # a float measurement is not an ID
    with pytest.raises(ValueError, match=r"data.target='patient' has 60 classes with one row each; is it an ID column"):
        _ = CSVDataModule(path, "patient").task


def test_many_categories_and_case_variants_warn(tmp_path, caplog):
    city = [f"city{i % 55}" for i in range(110)]
    sex = ["F", "M", "f", "M", "F"] * 22
    path = write_csv(tmp_path, table(n=110, city=city, sex=sex, y=["a", "b"] * 55))
    with caplog.at_level(logging.WARNING):
        _ = CSVDataModule(path, "y").task
    text = warnings_of(caplog)
    assert "categorical feature 'city' has 55 distinct values" in text and "data.drop_columns=[city]" in text
    assert "column 'sex' has categories that differ only by case: 'F' and 'f'" in text


def test_a_class_too_rare_to_stratify_is_named_as_written(tmp_path):
    labels = ["healthy"] * 40 + ["sick"] * 19 + ["Unknown "]
    path = write_csv(tmp_path, table(label=labels))
    with pytest.raises(ValueError, match=r"class 'Unknown' has only 1 row\(s\), too few.*add rows of it, or drop") as e:
        CSVDataModule(path, "label").setup()
    assert "least populated" not in str(e.value)


def test_header_only_and_encodings(tmp_path):
    header = tmp_path / "header.csv"
    header.write_text("a,b,y\n")
    with pytest.raises(ValueError, match=r"has a header but no data rows"):
        _ = CSVDataModule(str(header), "y").task
    df = table(town=["Köln", "Zürich", "Orléans"] * 20, y=["oui", "non"] * 30)
    latin = tmp_path / "latin.csv"
    df.to_csv(latin, index=False, encoding="latin-1")
    with pytest.raises(ValueError, match=r"is not valid utf-8 .*give its encoding, e.g. data.encoding=latin-1"):
        _ = CSVDataModule(str(latin), "y").task
    dm = CSVDataModule(str(latin), "y", encoding="latin-1")
    assert "town_Zürich" in dm.arrays.feature_names


def messy_medical_table(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Like the public 1000-row diabetes survey: two ID columns, 'F'/'f', labels with stray spaces."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 80, n)
    hba1c = rng.normal(7, 2, n)
    bmi = rng.normal(28, 5, n)
    chol = rng.normal(5, 1, n)
    score = 0.9 * (hba1c - 7) + 0.15 * (bmi - 28) + 0.03 * (age - 50) + rng.logistic(size=n) * 0.3
    label = np.where(score > 1.0, "Y", np.where(score > -0.5, "P", "N"))
    label = [v + " " if rng.random() < 0.1 else v for v in label]  # 'N ' and 'Y ' as typed by hand
    gender = rng.choice(["F", "M"], n).astype(object)
    gender[rng.choice(n, 3, replace=False)] = "f"
    return pd.DataFrame(
        {
            "ID": rng.permutation(n) + 1,
            "No_Pation": rng.permutation(np.arange(17000, 17000 + 5 * n, 5)),
            "Gender": gender,
            "AGE": age,
            "HbA1c": hba1c.round(1),
            "Chol": chol.round(1),
            "BMI": bmi.round(1),
            "CLASS": label,
        }
    )


@pytest.mark.e2e
def test_a_messy_table_trains_to_scikit_learns_accuracy(make_cfg, tmp_path, caplog):
    path = write_csv(tmp_path, messy_medical_table(), "Dataset of Diabetes.csv")
    cfg = make_cfg(
        "data=csv",
        f"data.path={path}",
        "data.target=CLASS",
        "data.drop_columns=[ID,No_Pation]",
        "model=logistic_regression",
        "trainer.max_epochs=30",
    )
    with caplog.at_level(logging.WARNING):
        metrics = train(cfg)
    assert "'F' and 'f'" in warnings_of(caplog)
    dm = restore(metrics["best_ckpt"]).datamodule()
    assert dm.class_names == ["N", "P", "Y"]
    assert dm.arrays.input_columns == ["Gender", "AGE", "HbA1c", "Chol", "BMI"]
    theirs = scores_on_test(dm, fit_reference(dm))["test/acc"]
    one_row = 1 / len(dm.split_tensors("test").y)
    assert abs(metrics["test"]["test/acc"] - theirs) <= one_row + 1e-9
    assert theirs > 0.7  # the table is learnable


@pytest.mark.e2e
def test_the_shipped_example_csv_trains_and_predicts_as_the_readme_says(tmp_path, cli):
    table = ROOT / "examples" / "breast_cancer.csv"
    code, _, err = cli("train.py", "data=csv", f"data.path={table}", "data.target=diagnosis", *QUICK,
                       "trainer.max_epochs=5", f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert code == 0, err[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["test/acc"] >= 0.9
    out_dir = tmp_path / "p"
    code, _, err = cli("predict.py", f"ckpt_path={tmp_path / 'run'}", f"input={table}", f"hydra.run.dir={out_dir}")
    assert code == 0, err[-3000:]
    predicted = pd.read_csv(tmp_path / "p" / "predictions.csv")
    assert len(predicted) == 569 and set(predicted.pred_label) <= {"benign", "malignant"}
    assert "CC BY 4.0" in (ROOT / "examples" / "README.md").read_text()  # its source and licence
