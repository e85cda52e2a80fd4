"""CSV files as people bring them: semicolons and decimal commas, empty target cells, too few
rows; and a pickled .npy given to predict.py. Each works or is one line."""

import numpy as np
import pandas as pd
import pytest

from litlab.data import CSVDataModule
from litlab.errors import USER_ERROR_EXIT, UserError
from litlab.run.train import train
from tests.helpers.config import compose_cfg

ROWS = 60


def table(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    glucose = rng.normal(120, 30, rows).round(1)
    return pd.DataFrame({"Glucose": glucose, "BMI": rng.normal(30, 5, rows).round(1), "Outcome": (glucose > 120) * 1})


def test_a_semicolon_file_with_decimal_commas_reads_as_numbers(tmp_path):
    df = table()
    path = tmp_path / "european.csv"
    df.to_csv(path, sep=";", decimal=",", index=False)
    assert ";" in path.read_text().splitlines()[0] and "," in path.read_text().splitlines()[1]  # as a spreadsheet
    dm = CSVDataModule(str(path), target="Outcome")
    assert dm.arrays.feature_names == ["Glucose", "BMI"]
    np.testing.assert_allclose(dm.arrays.x, df[["Glucose", "BMI"]].to_numpy(), rtol=1e-6)
    given = CSVDataModule(str(path), target="Outcome", delimiter=";")
    np.testing.assert_array_equal(given.arrays.x, dm.arrays.x)


def test_empty_target_cells_are_named_or_dropped(tmp_path):
    df = table().astype({"Outcome": object})
    df.loc[[3, 10], "Outcome"] = "   "  # only spaces: no silent third class ''
    path = tmp_path / "gaps.csv"
    df.to_csv(path, index=False)
    named = r"data.target='Outcome' is empty on 2 line\(s\) of .*\(5, 12\).*missing_target=drop"
    with pytest.raises(UserError, match=named):
        CSVDataModule(str(path), target="Outcome").arrays  # noqa: B018 - loading is what fails
    dm = CSVDataModule(str(path), target="Outcome", missing_target="drop")
    assert dm.class_names == ["0", "1"] and len(dm.arrays.y) == ROWS - 2
    rows = np.concatenate([dm.row_indices(s) for s in ("train", "val", "test")])
    assert sorted(rows.tolist()) == [i for i in range(ROWS) if i not in (3, 10)]  # the file's own data rows


@pytest.mark.parametrize(
    ("target_type", "match"),
    [("classification", r"gives the test split 1 row\(s\), fewer than the 2 classes"),
     ("regression", r"gives the test split 1 row\(s\), fewer than the 2 rows r2 needs")],
)  # fmt: skip
def test_too_few_rows_for_the_split_is_one_line_before_training(tmp_path, target_type, match):
    path = tmp_path / "five.csv"
    table(rows=5).to_csv(path, index=False)
    cfg = compose_cfg(tmp_path / "run", "data=csv", f"data.path={path}", "data.target=Outcome",
                      f"data.target_type={target_type}")  # fmt: skip
    with pytest.raises(UserError, match=match):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.e2e
def test_a_pickled_npy_given_to_predict_is_one_line(tmp_path, cli):
    path = tmp_path / "run"
    train(compose_cfg(path, "model=logistic_regression", "data=breast_cancer"))
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}, {"b": 2}], dtype=object), allow_pickle=True)
    code, out, err = cli("predict.py", f"ckpt_path={path}", f"input={objects}", f"output={tmp_path / 'p.csv'}")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == USER_ERROR_EXIT and len(lines) == 1, err
    assert "is not a plain numeric .npy array" in lines[0] and "Traceback" not in out + err
