"""evaluate.py tests what was trained: the checkpoint's data fingerprint must match the data found."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from litlab.errors import UserError
from litlab.run.evaluate import evaluate
from litlab.run.train import train
from tests.helpers.config import compose_cfg
from tests.helpers.data_files import write_mnist


def evaluate_cfg(tmp_path, ckpt: str, *overrides: str):
    return compose_cfg(tmp_path, f"ckpt_path={ckpt}", "trainer=cpu", *overrides, config_name="eval", shrink=False)


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fingerprint")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": (x[:, 0] > 0).astype(int)}).to_csv(
        tmp / "data.csv", index=False
    )
    metrics = train(compose_cfg(tmp / "run", "data=csv", f"data.path={tmp / 'data.csv'}", "data.target=y"))
    return tmp, metrics


def test_the_checkpoint_records_the_files_it_was_trained_on(csv_run):
    tmp, metrics = csv_run
    state = torch.load(metrics["best_ckpt"], weights_only=True)["CSVDataModule"]["fingerprint"]
    (entry,) = state["files"]
    assert state["key"] == "data.path" and entry["path"] == str(tmp / "data.csv")
    assert entry["size"] == (tmp / "data.csv").stat().st_size and len(entry["sha256"]) == 64


def test_a_moved_file_is_named_and_accepted_at_its_new_place(csv_run, tmp_path):
    tmp, metrics = csv_run
    moved = tmp_path / "moved.csv"
    shutil.move(tmp / "data.csv", moved)
    try:
        with pytest.raises(UserError, match=r"data.path: the training data .*data.csv is gone.*data.path=NEW"):
            evaluate(evaluate_cfg(tmp_path / "a", metrics["best_ckpt"]))
        result = evaluate(evaluate_cfg(tmp_path / "b", metrics["best_ckpt"], f"data.path={moved}"))
        assert result["test"]["test/acc"] == pytest.approx(metrics["test"]["test/acc"], abs=1e-6)
    finally:
        shutil.move(moved, tmp / "data.csv")


def test_an_edited_file_is_refused(csv_run, tmp_path):
    tmp, metrics = csv_run
    edited = tmp_path / "edited.csv"
    df = pd.read_csv(tmp / "data.csv")
    df.loc[5, "a"] += 1.0
    df.to_csv(edited, index=False)
    with pytest.raises(UserError, match=r"data.path: .*edited.csv changed since training \(size .*sha256"):
        evaluate(evaluate_cfg(tmp_path, metrics["best_ckpt"], f"data.path={edited}"))


def test_a_setting_that_changes_the_test_split_is_refused(csv_run, tmp_path):
    _, metrics = csv_run
    with pytest.raises(UserError, match=r"data.seed cannot be changed when evaluating"):
        evaluate(evaluate_cfg(tmp_path, metrics["best_ckpt"], "+data.seed=1"))


def test_a_changed_image_file_is_named(tmp_path):
    data_dir = write_mnist(tmp_path / "data" / "MNIST" / "raw").parents[1]
    metrics = train(
        compose_cfg(
            tmp_path / "run",
            "data=mnist",
            f"data.data_dir={data_dir}",
            "model=mlp",
            "trainer.max_epochs=1",
            "data.download=false",
        )
    )
    labels = data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    damaged = bytearray(labels.read_bytes())
    damaged[-5] ^= 0xFF  # one byte of the gzip trailer: same size, other content
    labels.write_bytes(bytes(damaged))
    with pytest.raises(UserError, match=r"data.data_dir: .*t10k-labels-idx1-ubyte.gz changed since training"):
        evaluate(evaluate_cfg(tmp_path / "eval", metrics["best_ckpt"]))
