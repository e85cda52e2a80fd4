"""The test-set figures: what a reader of the TensorBoard image finds in them."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, r2_score

from litlab.review.figures import MAX_CLASSES, confusion_figure, regression_figure


def predictions(num_classes: int, n: int, right: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, num_classes, n)
    guessed = np.where(rng.random(n) < right, targets, rng.integers(0, num_classes, n))
    return np.eye(num_classes)[guessed], targets


def test_confusion_matrix_has_counts_shares_accuracy_and_upright_names():
    probs, targets = predictions(10, 300, right=0.8)
    fig = confusion_figure(probs, targets, [str(i) for i in range(10)])
    ax, colorbar = fig.axes
    assert colorbar.get_ylabel() == "share of the true class"
    assert f"{accuracy_score(targets, probs.argmax(1)):.3f}" in ax.get_title()
    assert sum(int(t.get_text()) for t in ax.texts) == 300  # every test example counted once
    shares = ax.images[0].get_array()
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)  # each true class's row sums to 1
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(i) for i in range(10)]
    assert all(t.get_rotation() == 0 for t in ax.get_xticklabels())  # a tilted 7 reads as 1


def test_many_classes_show_the_most_confused():
    probs, targets = predictions(30, 900, right=0.9)
    targets[:40], probs[:40] = 3, np.eye(30)[7]  # class 3 taken for 7, forty times
    ax = confusion_figure(probs, targets, None).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == MAX_CLASSES and {"3", "7"} <= set(labels)
    assert f"{MAX_CLASSES} most-confused of 30 classes" in ax.get_title()


def test_regression_figure_has_r2_target_name_and_residuals():
    rng = np.random.default_rng(0)
    targets = rng.normal(150, 70, 200)
    preds = targets + rng.normal(0, 40, 200)
    scatter, residuals = regression_figure(preds, targets, "disease progression").axes
    r2 = float(scatter.get_title().split("=")[1])
    assert r2 == pytest.approx(r2_score(targets, preds), abs=1e-3)
    assert scatter.get_xlabel() == "true disease progression"
    np.testing.assert_allclose(residuals.collections[0].get_offsets()[:, 1], preds - targets)


@pytest.mark.e2e
def test_an_image_run_logs_its_mistakes_and_worst_rows(tmp_path):
    from litlab.run.train import train
    from tests.helpers.config import compose_cfg
    from tests.helpers.data_files import write_mnist
    from tests.helpers.outputs import events

    write_mnist(tmp_path / "MNIST" / "raw", n_train=200, n_test=40)
    cfg = compose_cfg(tmp_path / "run", "data=mnist", f"data.data_dir={tmp_path}", "logger=tensorboard",
                      "model=mlp", "model.hidden_sizes=[8]", "trainer.max_epochs=1")  # fmt: skip
    metrics = train(cfg)
    ea = events(Path(metrics["tensorboard"]))
    assert {"test/confusion_matrix", "test/misclassified"} <= set(ea.Tags()["images"])  # 1 epoch: mistakes
    (text,) = ea.Tensors("test/worst_predictions/text_summary")
    table = text.tensor_proto.string_val[0].decode()
    assert table.startswith("| test row | true | predicted | p(true) |") and len(table.splitlines()) == 12
