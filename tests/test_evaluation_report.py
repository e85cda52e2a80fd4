"""evaluate.py's report: every number equals scikit-learn's (or the binned formula's) on the same
predictions, read back from <split>_predictions.csv; temperature scaling lowers the val split's
NLL and ECE, changes no prediction, and predict.py applies the calibrated checkpoint's T."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    classification_report,
    f1_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)

from litlab.data_spec import DataSpec, InputKind, Task
from litlab.errors import UserError
from litlab.evaluation import figures
from litlab.evaluation.calibration import fit_temperature, golden_section
from litlab.evaluation.scored_split import ScoredSplit
from litlab.evaluation.split_outputs import SplitOutputs, collect
from litlab.files.run_record import RunRecord
from litlab.inference.restore import restore
from litlab.run.train import train
from tests.helpers.config import compose_cfg
from tests.helpers.outputs import events
from tests.helpers.processes import run_in_process

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop

TRAIN = {
    "digits": ("trainer.max_epochs=3",),
    "breast_cancer": ("model=mlp", "data=breast_cancer", "trainer.max_epochs=3"),
    "diabetes": ("experiment=diabetes_linear",),
}
EVAL = ("trainer=cpu", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false")
TOL = 1e-6


def evaluate_cli(out: Path, ckpt: str, *args: str) -> tuple[int, str, str]:
    return run_in_process("evaluate.py", f"ckpt_path={ckpt}", *EVAL, f"hydra.run.dir={out}", *args)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    """Three tiny real runs (multiclass images, binary table, regression), each evaluated once
    (the classifiers with calibrate=true): name -> {train, eval dir, console}."""
    tmp = tmp_path_factory.mktemp("evaluation")
    found = {}
    for name, overrides in TRAIN.items():
        train_dir = tmp / f"train_{name}"
        train(compose_cfg(train_dir, *overrides, "~callbacks.test_figures"))  # evaluate's figures are tested
        calibrate = ("calibrate=true",) if name != "diabetes" else ()
        code, out, err = evaluate_cli(tmp / f"eval_{name}", str(train_dir), *calibrate)
        assert code == 0, err[-3000:]
        found[name] = {"train": train_dir, "eval": tmp / f"eval_{name}", "console": out}
    return found


def read(run: dict, split: str = "test") -> tuple[pd.DataFrame, dict]:
    folder = run["eval"]
    return pd.read_csv(folder / f"{split}_predictions.csv"), json.loads((folder / "evaluation.json").read_text())


def probabilities(frame: pd.DataFrame) -> np.ndarray:
    """(N, C) the prob_* columns as the float32 values evaluate.py wrote."""
    return frame[[c for c in frame.columns if c.startswith("prob_")]].to_numpy().astype(np.float32)


def ece_numpy(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """sum over bins of |B|/N * |accuracy(B) - confidence(B)|, bins [k/15, (k+1)/15) of the top
    probability (torchmetrics' convention: a probability of exactly 1.0 is a bin of its own)."""
    confidence, correct = probs.max(1), probs.argmax(1) == y
    slot = np.searchsorted(np.linspace(0, 1, bins + 1, dtype=np.float32), confidence, side="right") - 1
    return sum(
        (slot == b).mean() * abs(correct[slot == b].mean() - confidence[slot == b].astype(np.float64).mean())
        for b in np.unique(slot)
    )


def assert_classification_equals_sklearn(run: dict, split: str = "test") -> None:
    frame, metrics = read(run, split)
    scores, y, probs = metrics["report"]["metrics"], frame["true_class"].to_numpy(), probabilities(frame)
    pred = frame["pred_class"].to_numpy()
    assert (pred == probs.argmax(1)).all()
    assert scores["acc"] == pytest.approx(accuracy_score(y, pred), abs=TOL)
    assert scores["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro"), abs=TOL)
    assert scores["f1_weighted"] == pytest.approx(f1_score(y, pred, average="weighted"), abs=TOL)
    assert scores["ece"] == pytest.approx(ece_numpy(probs, y), abs=TOL)
    per_class = pd.read_csv(run["eval"] / "report" / "per_class.csv")
    labels = list(range(probs.shape[1]))
    expected = classification_report(y, pred, labels=labels, output_dict=True, zero_division=0)
    for i, row in per_class.iterrows():
        want = expected[str(i)]
        assert [row.precision, row.recall, row.f1] == pytest.approx(
            [want["precision"], want["recall"], want["f1-score"]], abs=TOL
        )
        assert row.support == want["support"]
    if probs.shape[1] == 2:
        assert scores["auroc"] == pytest.approx(roc_auc_score(y, probs[:, 1]), abs=TOL)
        assert scores["average_precision"] == pytest.approx(average_precision_score(y, probs[:, 1]), abs=TOL)


def test_multiclass_numbers_equal_scikit_learns(runs):
    assert_classification_equals_sklearn(runs["digits"])


def test_binary_numbers_and_curves_equal_scikit_learns(runs):
    assert_classification_equals_sklearn(runs["breast_cancer"])
    assert (runs["breast_cancer"]["eval"] / "report" / "roc_pr.png").is_file()


def test_regression_numbers_equal_scikit_learns(runs):
    frame, metrics = read(runs["diabetes"])
    scores, y, v = metrics["report"]["metrics"], frame["target"].to_numpy(), frame["prediction"].to_numpy()
    assert scores["r2"] == pytest.approx(r2_score(y, v), rel=TOL)
    assert scores["mae"] == pytest.approx(mean_absolute_error(y, v), rel=TOL)
    assert scores["rmse"] == pytest.approx(root_mean_squared_error(y, v), rel=TOL)
    report = runs["diabetes"]["eval"] / "report"
    assert (report / "pred_vs_true.png").is_file() and not (report / "per_class.csv").exists()
    worst = pd.read_csv(report / "top_losses.csv")  # the largest errors first, with the 10 features
    errors = (frame["prediction"] - frame["target"]).abs().sort_values(ascending=False, kind="stable")
    assert list(worst["row"]) == list(frame.loc[errors.index[: len(worst)], "row"])
    assert {"age", "bmi", "s6"} <= set(worst.columns)


def scipy_interval(metric, y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    found = stats.bootstrap((np.arange(len(y)),), lambda i: metric(y[i], pred[i]), n_resamples=1000,
                            method="percentile", vectorized=False, random_state=np.random.default_rng(0))  # fmt: skip
    return found.confidence_interval.low, found.confidence_interval.high


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    return f1_score(y, pred, average="macro")


@pytest.mark.parametrize(
    ("run", "truth", "predicted", "metrics"),
    [("digits", "true_class", "pred_class", {"acc": accuracy_score, "f1_macro": macro_f1}),
     ("diabetes", "target", "prediction", {"mae": mean_absolute_error, "r2": r2_score})],
)  # fmt: skip
def test_each_headline_metric_has_the_bootstrap_interval_scipy_gives(runs, run, truth, predicted, metrics):
    """Values: scipy's own draws, so its interval exactly. Classes: the same distribution drawn by
    confusion-matrix cell (litlab.evaluation.bootstrap.resampled), so scipy's interval within the
    Monte Carlo error of 1,000 resamples (a tenth of the interval's width here)."""
    frame, record = read(runs[run])
    scores, y, pred = record["report"]["metrics"], frame[truth].to_numpy(), frame[predicted].to_numpy()
    for name, metric in metrics.items():
        low, high = scipy_interval(metric, y, pred)
        close = {"rel": 1e-5} if run == "diabetes" else {"abs": (high - low) / 10}  # the CSV holds float32 values
        assert scores[f"{name}_ci_low"] == pytest.approx(low, **close)
        assert scores[f"{name}_ci_high"] == pytest.approx(high, **close)
        assert scores[f"{name}_ci_low"] <= scores[name] <= scores[f"{name}_ci_high"]
    assert "| bootstrap interval |" in (runs[run]["eval"] / "report" / "report.md").read_text()


@pytest.mark.parametrize(
    ("run", "names"),
    [("digits", {"test/acc": "acc", "test/f1": "f1_macro"}),
     ("diabetes", {"test/mae": "mae", "test/rmse": "rmse", "test/r2": "r2"})],
)  # fmt: skip
def test_a_training_run_records_the_test_intervals_evaluate_reports_for_its_checkpoint(runs, run, names):
    """The training run's metrics.json: the same rows, the same predictions, the same resamples."""
    record, (_, evaluation) = RunRecord.read(runs[run]["train"]), read(runs[run])
    scores = evaluation["report"]["metrics"]
    assert record.test_intervals is not None and set(record.test_intervals) == set(names)
    for logged, name in names.items():
        expected = [scores[f"{name}_ci_low"], scores[f"{name}_ci_high"]]
        assert record.test_intervals[logged] == pytest.approx(expected, rel=1e-5)


def test_the_most_confused_pairs_are_counted_from_the_predictions(runs):
    frame, _ = read(runs["digits"])
    wrong = frame[frame.true_label != frame.pred_label]
    counts = wrong.groupby(["true_label", "pred_label"]).size().sort_values(ascending=False, kind="stable")
    page = (runs["digits"]["eval"] / "report" / "report.md").read_text()
    section = page.split("## Most-confused pairs")[1].split("##")[0]
    listed = [line.split("|")[1:4] for line in section.splitlines() if line.startswith("| ") and "true" not in line]
    assert [int(c) for _, _, c in listed] == list(counts.to_numpy()[: len(listed)])
    assert all(counts[(int(t), int(p))] == int(c) for t, p, c in listed)


def test_the_report_page_figures_and_tensorboard(runs):
    folder = runs["digits"]["eval"]
    page = (folder / "report" / "report.md").read_text()
    for name in ("confusion_matrix", "reliability", "top_losses"):
        png = folder / "report" / f"{name}.png"
        assert f"]({name}.png)" in page and png.read_bytes()[:4] == b"\x89PNG"
    ea = events(folder)
    assert {"test/confusion_matrix", "test/reliability", "test/top_losses"} <= set(ea.Tags()["images"])
    assert {"test/acc", "test/ece", "test/temperature"} <= set(ea.Tags()["scalars"])
    assert {"test/per_class/text_summary", "test/top_losses/text_summary"} <= set(ea.Tags()["tensors"])
    console = runs["digits"]["console"]
    assert "report" in console and "test accuracy" in console and "test calibrated  ECE" in console


def test_calibration_fits_on_val_and_writes_a_calibrated_checkpoint(runs):
    for name in ("digits", "breast_cancer"):
        folder = runs[name]["eval"]
        _, metrics = read(runs[name])
        scores = metrics["report"]["metrics"]
        assert scores["val_nll_after"] <= scores["val_nll_before"]  # T minimises it; T = 1 was a candidate
        assert scores["val_ece_after"] <= scores["val_ece_before"]
        assert {"test_ece_before", "test_ece_after"} <= set(scores)
        ckpt = torch.load(folder / "checkpoints" / "calibrated.ckpt", weights_only=True)
        original = torch.load(metrics["ckpt_path"], weights_only=True)
        assert ckpt["hyper_parameters"]["temperature"] == pytest.approx(scores["temperature"], rel=1e-12)
        assert original["hyper_parameters"]["temperature"] == 1.0  # the training run's file is untouched
        assert all(torch.equal(ckpt["state_dict"][k], v) for k, v in original["state_dict"].items())


def test_temperature_minimises_the_val_nll_and_keeps_every_prediction(runs):
    restored = restore(runs["digits"]["train"] / "checkpoints" / "last.ckpt")
    model, datamodule = restored.model, restored.datamodule()
    val = collect(model, datamodule.val_dataloader(), datamodule.spec.kind, keep=0)
    t = fit_temperature(Task.MULTICLASS, val.logits, val.targets)

    def nll(temperature: float) -> float:
        return float(torch.nn.functional.cross_entropy(val.logits.double() / temperature, val.targets))

    assert nll(t) <= min(nll(t * 1.01), nll(t / 1.01), nll(1.0))
    assert torch.equal((val.logits / t).argmax(1), val.logits.argmax(1))


def test_predict_applies_the_calibrated_temperature(runs, tmp_path):
    folder = runs["digits"]["eval"]
    metrics = json.loads((folder / "evaluation.json").read_text())
    t = metrics["report"]["metrics"]["temperature"]
    restored = restore(metrics["ckpt_path"])
    model, datamodule = restored.model, restored.datamodule()
    x = datamodule.split_tensors("test").x[:40]  # raw pixels, as a user's .npy holds them
    np.save(tmp_path / "x.npy", x.numpy())
    out = tmp_path / "preds.csv"
    code, _, err = run_in_process(
        "predict.py", f"ckpt_path={folder / 'checkpoints' / 'calibrated.ckpt'}", f"input={tmp_path / 'x.npy'}",
        f"output={out}", f"hydra.run.dir={tmp_path / 'predict'}",
    )  # fmt: skip
    assert code == 0, err[-3000:]
    with torch.no_grad():
        logits = model.eval()(datamodule.scaler(x)).double()
    np.testing.assert_allclose(probabilities(pd.read_csv(out)), (logits / t).softmax(1).numpy(), atol=1e-6)
    before = probabilities(pd.read_csv(folder / "test_predictions.csv"))[:40]  # the checkpoint's own T = 1
    np.testing.assert_allclose(before, logits.softmax(1).numpy(), atol=1e-6)


def test_split_val_reports_the_validation_split(runs, tmp_path):
    run = {**runs["breast_cancer"], "eval": tmp_path / "val"}
    code, out, err = evaluate_cli(run["eval"], str(run["train"]), "split=val")
    assert code == 0, err[-3000:]
    frame, metrics = read(run, "val")
    assert metrics["split"] == "val" and "val/loss" in metrics["val"] and "test" not in metrics
    assert len(frame) == 86 and "val accuracy" in out
    assert_classification_equals_sklearn(run, "val")


def test_bad_split_and_calibrating_a_regression_are_one_line_errors(runs, tmp_path):
    code, _, err = evaluate_cli(tmp_path / "a", str(runs["diabetes"]["train"]), "split=train")
    assert code == 2 and err.strip() == "Error: split='train' is not a split evaluate.py reports on; valid: test, val"
    code, _, err = evaluate_cli(tmp_path / "b", str(runs["diabetes"]["train"]), "calibrate=true")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "calibrate=true fits a temperature to class probabilities" in err and "regression" in err


def test_a_val_split_predicted_all_right_fits_no_temperature():
    logits = torch.tensor([[3.0, -1.0], [-2.0, 2.5], [4.0, 0.0]])
    with pytest.raises(UserError, match=r"keeps falling as T -> 0 .*0 of its 3 rows predicted wrong"):
        fit_temperature(Task.MULTICLASS, logits, torch.tensor([0, 1, 0]))


def test_golden_section_finds_the_minimum():
    assert golden_section(lambda x: (x - math.log(2.5)) ** 2, -4.6, 4.6, 1e-9) == pytest.approx(math.log(2.5), abs=1e-8)


def test_the_top_loss_images_are_those_of_the_top_loss_rows(runs):
    restored = restore(runs["digits"]["train"] / "checkpoints" / "last.ckpt")
    model, datamodule = restored.model, restored.datamodule()
    loader = datamodule.test_dataloader()
    loader.batch_size = 32  # several batches: the running top-k crosses them
    outputs = collect(model, loader, datamodule.spec.kind, keep=10)
    scaled = datamodule.scaler(datamodule.split_tensors("test").x)
    assert outputs.worst_inputs is not None
    assert torch.equal(outputs.worst_inputs, scaled[outputs.worst])
    assert torch.equal(outputs.worst, torch.sort(outputs.losses, descending=True, stable=True).indices[:10])


def scored_binary() -> ScoredSplit:
    """Six rows of a binary table, scored: the object evaluate.py builds, without a model."""
    p = torch.tensor([0.9, 0.2, 0.7, 0.4, 0.6, 0.1], dtype=torch.float64)
    probs, targets = torch.stack([1 - p, p], 1), torch.tensor([1, 0, 0, 1, 1, 0])
    losses = -probs[torch.arange(6), targets].log()
    worst = torch.sort(losses, descending=True, stable=True).indices[:3]
    outputs = SplitOutputs(torch.logit(p).unsqueeze(1), probs, targets, losses, worst, worst_inputs=None)
    spec = DataSpec(Task.BINARY, InputKind.TABLE, (2,), class_names=("no", "yes"))
    return ScoredSplit.score("test", "run/checkpoints/best.ckpt", spec, outputs, rows=np.arange(100, 106))


def test_a_split_is_scored_once_and_each_view_reads_the_same_numbers():
    scored = scored_binary()
    y, p = scored.outputs.targets.numpy(), scored.outputs.outputs[:, 1].numpy()
    assert scored.scalars["acc"] == pytest.approx(accuracy_score(y, p > 0.5))
    assert scored.scalars["auroc"] == pytest.approx(roc_auc_score(y, p))
    worst = scored.top_losses()
    assert list(worst["row"]) == [102, 103, 104]  # p(true) 0.3, 0.4, 0.6: the lowest first
    assert list(worst["p(true)"]) == pytest.approx([0.3, 0.4, 0.6])
    report = scored.report()
    assert report.scalars == scored.scalars and set(report.tables) == {"per_class.csv", "top_losses.csv"}
    assert set(report.figures) == {"confusion_matrix", "roc_pr", "reliability"}
    low, high = scored.intervals["acc"]
    shown = f"{scored.scalars['acc']:.4f} (95% CI {low:.4f} to {high:.4f})"
    assert ("test accuracy", shown) in scored.console_lines()


def test_a_figure_draws_on_the_axes_it_is_given():
    scored = scored_binary()
    numbers = scored.classification()
    figure = Figure()
    left, right = figure.subplots(1, 2)
    assert figures.confusion_matrix(numbers.confusion, scored.names, "test", ax=left) is figure
    assert figures.binary_curves(numbers.curves, "yes", "test", axes=[right, figure.add_subplot(3, 3, 9)]) is figure
    assert left.get_title().startswith("test: confusion") and right.get_title().startswith("test: ROC of 'yes'")
    assert scored.confusion_figure() is not figure  # without axes: a figure of its own
