"""model.class_weight: imbalanced classes weighted as scikit-learn weighs them, and logistic
regression with L-BFGS reaching LogisticRegression(class_weight=...)'s optimum on the same split."""

import numpy as np
import pandas as pd
import pytest
import torch

from litlab.data_spec import Task
from litlab.errors import UserError
from litlab.evaluation.reference import fit_reference
from litlab.inference.restore import restore
from litlab.models.settings import class_weights
from litlab.run.train import train
from tests.helpers.config import compose_cfg
from tests.helpers.data_files import write_csv


def imbalanced_table(folder) -> str:
    """Three classes of 300, 90 and 30 rows, two informative features and a noise one."""
    rng = np.random.default_rng(7)
    y = np.repeat([0, 1, 2], [300, 90, 30])
    x = rng.normal(size=(len(y), 3)) + np.stack([y * 0.8, -y * 0.5, np.zeros(len(y))], axis=1)
    df = pd.DataFrame(x, columns=["a", "b", "noise"]).assign(kind=np.array(["common", "rarer", "rare"])[y])
    return write_csv(folder, df.sample(frac=1.0, random_state=0))


def assert_coefficients_match(metrics: dict, class_weight) -> None:
    restored = restore(metrics["best_ckpt"])
    net, dm = restored.model, restored.datamodule()
    ref = fit_reference(dm, C=1.0, tol=1e-10, class_weight=class_weight)
    w = net.linear.weight.detach().double().numpy()
    b = net.linear.bias.detach().double().numpy()
    assert np.abs(w - ref.coef_.reshape(w.shape)).max() <= 1e-3 * np.abs(ref.coef_).max()
    if len(b) > 1:  # softmax: intercepts compared centred
        b, ref_b = b - b.mean(), ref.intercept_ - ref.intercept_.mean()
    else:
        ref_b = ref.intercept_
    assert np.abs(b - ref_b).max() <= 1e-3 * max(np.abs(ref_b).max(), np.abs(ref.coef_).max())


@pytest.mark.e2e
@pytest.mark.parametrize("class_weight", ["balanced", [1.0, 3.0]], ids=["balanced", "list"])
def test_binary_logistic_regression_reaches_scikit_learns_weighted_optimum(make_cfg, class_weight):
    given = "balanced" if class_weight == "balanced" else "[1.0,3.0]"
    cfg = make_cfg("model=logistic_regression", "data=breast_cancer", f"model.class_weight={given}",
                   "trainer.max_epochs=30")  # fmt: skip
    assert_coefficients_match(train(cfg), class_weight)


@pytest.mark.e2e
def test_multinomial_logistic_regression_reaches_scikit_learns_balanced_optimum(make_cfg, tmp_path):
    cfg = make_cfg("model=logistic_regression", "data=csv", f"data.path={imbalanced_table(tmp_path)}",
                   "data.target=kind", "model.class_weight=balanced", "trainer.max_epochs=30")  # fmt: skip
    metrics = train(cfg)
    assert_coefficients_match(metrics, "balanced")
    # and the weights changed the fit
    table = imbalanced_table(tmp_path)
    plain = train(compose_cfg(tmp_path / "plain", "model=logistic_regression", "data=csv", f"data.path={table}",
                              "data.target=kind", "trainer.max_epochs=30"))  # fmt: skip
    assert not np.allclose(restore(plain["best_ckpt"]).model.linear.weight.detach().numpy(),
                           restore(metrics["best_ckpt"]).model.linear.weight.detach().numpy())  # fmt: skip


def test_balanced_weights_are_scikit_learns_formula_and_bad_values_are_refused():
    weights = class_weights(Task.MULTICLASS, "balanced", [300, 90, 30])
    assert torch.allclose(weights, torch.tensor([420 / (3 * 300), 420 / (3 * 90), 420 / (3 * 30)]))
    assert class_weights(Task.BINARY, None, [10, 5]) is None
    with pytest.raises(UserError, match="applies to classification only"):
        class_weights(Task.REGRESSION, "balanced", None)
    with pytest.raises(UserError, match=r"one weight > 0 per class \(3 classes\)"):
        class_weights(Task.MULTICLASS, [1.0, 2.0], [300, 90, 30])
    with pytest.raises(UserError, match="is invalid"):
        class_weights(Task.BINARY, "heavy", [10, 5])
