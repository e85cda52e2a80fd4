"""predict.py: new inputs preprocessed from the checkpoint alone, matching evaluate's test predictions."""

import shutil

import numpy as np
import pandas as pd
import pytest
from omegaconf import open_dict
from PIL import Image
from sklearn import datasets
from sklearn.linear_model import LinearRegression

from litlab.errors import UserError
from litlab.evaluation.reference import scaled_split
from litlab.inference.checkpoint import predict
from litlab.inference.restore import restore
from litlab.run.build import build_datamodule
from litlab.run.evaluate import evaluate
from litlab.run.train import train
from tests.helpers.config import compose_cfg
from tests.helpers.data_files import write_mnist

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop


def train_and_evaluate(tmp_path, *overrides: str) -> tuple[str, pd.DataFrame]:
    """Train briefly; return the best checkpoint and evaluate.py's test_predictions.csv."""
    metrics = train(compose_cfg(tmp_path / "train", *overrides))
    cfg = compose_cfg(tmp_path / "eval", f"ckpt_path={metrics['best_ckpt']}", config_name="eval", shrink=False)
    with open_dict(cfg):
        cfg.trainer.accelerator, cfg.trainer.enable_progress_bar = "cpu", False
    evaluate(cfg)
    return metrics["best_ckpt"], pd.read_csv(tmp_path / "eval" / "test_predictions.csv")


def assert_same_predictions(predicted: pd.DataFrame, expected: pd.DataFrame) -> None:
    probs = [c for c in expected.columns if c.startswith(("prob_", "prediction"))]
    assert probs, expected.columns
    if "pred_class" in expected:
        assert (predicted["pred_class"].to_numpy() == expected["pred_class"].to_numpy()).all()
        assert (predicted["pred_label"].astype(str).to_numpy() == expected["pred_label"].astype(str).to_numpy()).all()
    np.testing.assert_allclose(predicted[probs].to_numpy(), expected[probs].to_numpy(), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A CSV with a categorical feature and string labels: the label follows x1 + the colour."""
    tmp = tmp_path_factory.mktemp("csv")
    rng = np.random.default_rng(0)
    n = 400
    color = rng.choice(["red", "green", "blue"], n)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    score = x1 + np.select([color == "red", color == "blue"], [1.5, -1.5], 0.0)
    df = pd.DataFrame({"x1": x1, "color": color, "x2": x2, "label": np.where(score > 0, "yes", "no")})
    path = tmp / "data.csv"
    df.to_csv(path, index=False)
    data = ["data=csv", f"data.path={path}", "data.target=label"]
    ckpt, expected = train_and_evaluate(tmp, *data, "trainer.max_epochs=5")
    return tmp, path, df, ckpt, expected


def test_csv_predictions_reproduce_evaluate(csv_run):
    tmp, path, df, ckpt, expected = csv_run
    # the whole file, target column and all, in another column order: only the features are used
    shuffled = tmp / "new.csv"
    df[["x2", "label", "color", "x1"]].to_csv(shuffled, index=False)
    predicted = predict(ckpt, str(shuffled), str(tmp / "out" / "pred.csv"))
    assert list(predicted.columns) == ["row", "pred_class", "pred_label", "prob_no", "prob_yes"]
    assert_same_predictions(predicted.iloc[expected["row"]].reset_index(drop=True), expected)
    assert (predicted["pred_label"] == df["label"]).mean() > 0.85  # it learned the rule
    assert list(expected.columns[:3]) == ["row", "true_class", "true_label"]  # the truth beside each prediction
    assert (expected["true_label"] == df["label"].iloc[expected["row"]].to_numpy()).all()
    assert pd.read_csv(tmp / "out" / "pred.csv")["pred_label"].tolist() == predicted["pred_label"].tolist()


def test_predict_script_writes_into_its_run_dir_and_names_missing_columns(csv_run, cli, monkeypatch):
    tmp, path, df, ckpt, _ = csv_run
    monkeypatch.chdir(tmp)
    code, _, err = cli("predict.py", f"ckpt_path={ckpt}", f"input={path}", f"paths.log_dir={tmp / 'logs'}")
    assert code == 0, err
    (out,) = (tmp / "logs" / "predict" / "runs").glob("*/predictions.csv")
    assert len(pd.read_csv(out)) == len(df)
    df.drop(columns=["color"]).to_csv(tmp / "no_color.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['color'\].*trained on \['x1', 'color', 'x2'\]"):
        predict(ckpt, str(tmp / "no_color.csv"), str(tmp / "x.csv"))
    with pytest.raises(UserError, match="does not overwrite"):
        predict(ckpt, str(path), str(out))


def test_regression_predictions_reproduce_evaluate(tmp_path):
    ckpt, expected = train_and_evaluate(tmp_path, "data=diabetes", "model=linear_regression")
    # in the target's own units (disease progression, 25..346), and those of least squares
    dm = restore(ckpt).datamodule()
    ols = LinearRegression().fit(*scaled_split(dm, "train"))
    np.testing.assert_allclose(expected["prediction"], ols.predict(scaled_split(dm, "test")[0]), rtol=1e-4)
    target = datasets.load_diabetes().target[expected["row"]]  # the true value beside each prediction
    assert list(expected.columns[:3]) == ["row", "target", "prediction"]
    np.testing.assert_allclose(expected["target"], target, rtol=1e-6)
    features = datasets.load_diabetes(as_frame=True).data
    features.to_csv(tmp_path / "diabetes.csv", index=False)
    predicted = predict(ckpt, str(tmp_path / "diabetes.csv"), str(tmp_path / "pred.csv"))
    assert list(predicted.columns) == ["row", "prediction"]
    assert_same_predictions(predicted.iloc[expected["row"]].reset_index(drop=True), expected)


def test_image_folder_and_npy_predictions_reproduce_evaluate(tmp_path):
    write_mnist(tmp_path / "data" / "MNIST" / "raw", n_train=200, n_test=40)
    overrides = ["data=mnist", f"data.data_dir={tmp_path / 'data'}", "data.download=false", "model.hidden_sizes=[32]"]
    ckpt, expected = train_and_evaluate(tmp_path, *overrides, "trainer.max_epochs=3")
    dm = build_datamodule(compose_cfg(tmp_path, *overrides))
    test_x = dm.split_tensors("test").x.numpy()  # (40, 1, 28, 28) uint8, as in the idx file
    folder = tmp_path / "images"
    folder.mkdir()
    for i, img in enumerate(test_x):
        Image.fromarray(img[0]).save(folder / f"digit_{i:03d}.png")
    Image.fromarray(np.zeros((56, 56, 3), np.uint8)).save(tmp_path / "big_rgb.png")  # resized, made grey
    shutil.rmtree(tmp_path / "data")  # predict needs no training data: the checkpoint has what it needs
    from_png = predict(ckpt, str(folder), str(tmp_path / "png.csv"))
    assert from_png["file"].tolist()[:2] == ["digit_000.png", "digit_001.png"]
    assert_same_predictions(from_png, expected)
    np.save(tmp_path / "x.npy", test_x[:, 0])  # (N, 28, 28) is accepted for one channel
    assert_same_predictions(predict(ckpt, str(tmp_path / "x.npy"), str(tmp_path / "npy.csv")), expected)
    np.save(tmp_path / "bad.npy", test_x[:, :, :27, :27])
    with pytest.raises(ValueError, match=r"shape \(40, 1, 27, 27\); this model expects \(N, 1, 28, 28\)"):
        predict(ckpt, str(tmp_path / "bad.npy"), str(tmp_path / "bad.csv"))
    with pytest.raises(ValueError, match="trained on images of shape"):
        predict(ckpt, str(tmp_path / "png.csv"), str(tmp_path / "c.csv"))
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "big_rgb.png").rename(other / "big_rgb.png")
    assert len(predict(ckpt, str(other), str(tmp_path / "rgb.csv"))) == 1
