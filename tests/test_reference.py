"""Linear and logistic regression with their defaults reach scikit-learn's optimum on the same
split: the same coefficients (within 1e-3, relative) and the same test predictions, whatever the
number of threads (which changes the order of float sums, and with it L-BFGS's path)."""

import logging
import os

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression

from litlab.evaluation.reference import fit_reference, scaled_split, scores_on_test
from litlab.inference.restore import restore
from litlab.run.train import train

pytestmark = pytest.mark.e2e  # every test here runs a whole job

CASES = [
    ("logistic_regression", "breast_cancer"),  # binary: one logit
    ("logistic_regression", "digits"),  # multinomial: 10 logits
    ("linear_regression", "diabetes"),  # OLS, target in the hundreds
    ("linear_regression", "synthetic_regression"),
]


def fitted(make_cfg, model: str, data: str):
    """Train with the defaults alone; return the run's metrics, model and DataModule."""
    cfg = make_cfg(f"model={model}", f"data={data}", "trainer.max_epochs=30")
    assert cfg.optimizer._target_ == "torch.optim.LBFGS" and cfg.data.batch_size == "full"
    metrics = train(cfg)
    restored = restore(metrics["best_ckpt"])
    net, dm = restored.model, restored.datamodule()
    return metrics, net.eval(), dm


def coefficients(net) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) in the units of the target: the network predicts the standardized target."""
    w, b = net.linear.weight.detach().double().numpy(), net.linear.bias.detach().double().numpy()
    if net.task.is_classification:
        return w, b
    return w * net.target_std, b * net.target_std + net.target_mean


def assert_close(ours: np.ndarray, ref: np.ndarray, rtol: float = 1e-3) -> None:
    err = np.abs(ours - ref).max() / np.abs(ref).max()
    assert err <= rtol, f"max relative difference {err:.2e}:\n{ours}\n{ref}"


# Each case with 1 thread and with every core this process may use (2 on CI's machine); with all
# cores, all but breast_cancer's (a second of each) in the slow suite.
ALL_CORES = len(os.sched_getaffinity(0))
THREADED = [
    pytest.param(model, data, threads, id=f"{model}-{data}-{threads}thread{'s' * (threads > 1)}",
                 marks=[pytest.mark.slow] if threads > 1 and data != "breast_cancer" else [])
    for model, data in CASES
    for threads in sorted({1, ALL_CORES})
]  # fmt: skip


@pytest.fixture
def with_threads():
    """Sets torch's intra-op threads for the test and puts them back afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize(("model", "data", "threads"), THREADED)
def test_defaults_reach_scikit_learns_optimum(make_cfg, model, data, threads, with_threads, caplog):
    with_threads(threads)
    with caplog.at_level(logging.INFO, logger="litlab.run.convergence"):
        metrics, net, dm = fitted(make_cfg, model, data)
    assert metrics["epochs"] <= 3, "L-BFGS should converge and stop within a few epochs"
    assert "converged: epoch" in caplog.text and "not converged" not in caplog.text
    ref = fit_reference(dm, tol=1e-10)  # LogisticRegression(C=1.0) / LinearRegression(), solved tightly
    w, b = coefficients(net)
    assert_close(w, ref.coef_.reshape(w.shape))
    if isinstance(ref, LogisticRegression) and len(b) > 1:
        # softmax logits are unchanged by a shift common to all classes, and the intercepts are
        # not penalized: compare them centred
        b, ref_b = b - b.mean(), ref.intercept_ - ref.intercept_.mean()
    else:
        ref_b = np.atleast_1d(ref.intercept_)
    assert np.abs(b - ref_b).max() <= 1e-3 * max(np.abs(ref_b).max(), np.abs(ref.coef_).max())

    x, y = scaled_split(dm, "test")
    with torch.no_grad():
        ours = net.predict_outputs(net(torch.as_tensor(x, dtype=torch.float32))).double().numpy()
    theirs = scores_on_test(dm, ref)
    if isinstance(ref, LogisticRegression):
        assert np.array_equal(ours.argmax(1), ref.predict(x)), "test predictions differ"
        assert metrics["test"]["test/acc"] == pytest.approx(theirs["test/acc"], abs=1e-6)
    else:
        assert np.abs(ours - ref.predict(x)).max() <= 1e-3 * y.std()
        assert metrics["test"]["test/r2"] == pytest.approx(theirs["test/r2"], abs=1e-4)


def test_least_squares_equals_lstsq(make_cfg):
    """OLS against torch.linalg.lstsq on the same scaled train rows, and the true generator."""
    _, net, dm = fitted(make_cfg, "linear_regression", "synthetic_regression")
    x, y = scaled_split(dm, "train")
    design = torch.as_tensor(np.hstack([x, np.ones((len(x), 1))]))  # (N, F + 1): bias column
    solution = torch.linalg.lstsq(design, torch.as_tensor(y, dtype=torch.float64)[:, None]).solution[:, 0].numpy()
    w, b = coefficients(net)
    assert_close(np.append(w[0], b), solution)
    true_w = dm.true_weight.astype("float64")
    assert np.abs(w[0] / dm.scaler.scale.double().numpy() - true_w).max() < 0.02


def test_c_and_alpha_mean_what_they_mean_in_scikit_learn(make_cfg, tmp_path):
    """model.C=0.05 is LogisticRegression(C=0.05); model.alpha=30 is Ridge(alpha=30)."""
    for model, data, setting in (
        ("logistic_regression", "breast_cancer", {"C": 0.05}),
        ("linear_regression", "diabetes", {"alpha": 30.0}),
    ):
        ((key, value),) = setting.items()
        cfg = make_cfg(f"model={model}", f"data={data}", "trainer.max_epochs=30", f"model.{key}={value}")
        cfg.paths.output_dir = str(tmp_path / key)
        restored = restore(train(cfg)["best_ckpt"])
        net, dm = restored.model, restored.datamodule()
        ref = fit_reference(dm, tol=1e-10, **setting)
        assert_close(coefficients(net)[0], ref.coef_.reshape(1, -1))
        default = fit_reference(dm, tol=1e-10, **{key: 1.0 if key == "C" else 0.0})
        assert np.abs(ref.coef_).sum() < 0.9 * np.abs(default.coef_).sum()  # a stronger penalty: smaller W


def test_mlp_on_diabetes_is_at_least_ols(make_cfg):
    """The standardized target lets the default MLP match least squares on the same split."""
    cfg = make_cfg("model=mlp", "data=diabetes", "trainer.max_epochs=30")
    metrics = train(cfg)
    dm = restore(metrics["best_ckpt"]).datamodule()
    ols = scores_on_test(dm, LinearRegression().fit(*scaled_split(dm, "train")))
    assert metrics["test"]["test/r2"] >= ols["test/r2"]


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        # L-BFGS that cannot move (every step breaks before its line search): the weights stay put
        (["model=logistic_regression", "optimizer.tolerance_change=1e9"], "L-BFGS stalled, not converged: epoch 0"),
        # full-batch Adam: a loss that stops falling says nothing about the optimum
        (["model=logistic_regression", "optimizer=adam", "data.batch_size=full", "callbacks.convergence.min_delta=1"],
         "train/loss stopped improving: epoch 1"),
    ],
    ids=["lbfgs-stalled", "adam-full-batch"],
)  # fmt: skip
def test_a_full_batch_run_that_stops_unconverged_does_not_say_converged(make_cfg, caplog, overrides, says):
    cfg = make_cfg(*overrides, "data=breast_cancer", "trainer.max_epochs=30")
    with caplog.at_level(logging.INFO, logger="litlab.run.convergence"):
        metrics = train(cfg)
    assert metrics["epochs"] == 2 and says in caplog.text
    assert not any(r.getMessage().startswith("converged:") for r in caplog.records)
