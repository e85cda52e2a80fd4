"""A metric's direction comes from the metric itself (litlab.models.metrics), and the best
checkpoint, early stopping and the Optuna study all follow it."""

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from litlab.models.metrics import REGRESSION, checked_mode, direction
from litlab.run.train import train
from tests.helpers.config import LIGHT, QUICK
from tests.helpers.outputs import job_metrics


def test_every_logged_metric_declares_its_direction():
    assert direction("val/loss") == "min"
    assert [direction(f"val/{name}") for name in ("acc", "f1", "auroc", "r2")] == ["max"] * 4
    # Lower-is-better metrics whose names the old rule (loss/mse/mae suffix) did not know: rmse is one.
    assert "rmse" in REGRESSION and direction("val/rmse") == "min"
    assert [direction(f"test/{name}") for name in ("mse", "mae")] == ["min", "min"]
    assert direction("acc") == "max"  # a bare name, as hydra.sweeper.direction's checks give it
    # monitor.mode=auto resolves to the direction, and the direction itself is accepted as given
    for metric in ("val/loss", "val/rmse", "val/r2", "val/acc"):
        better = direction(metric)
        assert checked_mode(metric, "auto", "monitor.mode") == better == checked_mode(metric, better, "monitor.mode")


def epoch_curve(run_dir: Path, metrics: dict, name: str) -> pd.Series:
    """`name` at the end of each epoch the run trained, from its CSV log (without the best checkpoint's
    validation after fit, which is logged as one epoch more)."""
    log = pd.read_csv(run_dir / "csv" / "metrics.csv").dropna(subset=[name])
    return log[log["epoch"] < metrics["epochs"]].groupby("epoch")[name].last()


@pytest.mark.e2e
def test_the_best_checkpoint_minimises_a_lower_is_better_metric(make_cfg, tmp_path):
    """val/rmse (not named like a loss) watched with monitor.mode=auto: the best checkpoint is the
    epoch with the lowest val/rmse, not the highest."""
    cfg = make_cfg(
        "data=diabetes", "model=mlp", "monitor.metric=val/rmse", "logger=csv", "trainer.max_epochs=6",
        "optimizer.lr=0.003", "callbacks.early_stopping.patience=100",
    )  # fmt: skip
    metrics = train(cfg)
    assert metrics["monitor"] == "val/rmse" and metrics["mode"] == "min"
    per_epoch = epoch_curve(tmp_path, metrics, "val/rmse")
    assert per_epoch.idxmin() != per_epoch.idxmax()  # the test can tell the two directions apart
    best = torch.load(metrics["best_ckpt"], weights_only=True)
    assert best["epoch"] == per_epoch.idxmin()
    assert metrics["val"]["val/rmse"] == pytest.approx(per_epoch.min(), rel=1e-5)
    assert OmegaConf.load(tmp_path / "config.yaml").monitor.mode == "min"  # what ran, not 'auto'


# Adam at lr 0.03 learns the digits for three epochs, then StepLR multiplies the learning rate by 100:
# with seed 42, val/acc rises to a single peak at epoch 2 and collapses after it.
PEAK_THEN_FALL = ["model=mlp", "model.hidden_sizes=[32]", "optimizer.lr=0.03", "scheduler=step",
                  "scheduler.step_size=3", "scheduler.gamma=100", "monitor.metric=val/acc", "logger=csv",
                  *LIGHT]  # fmt: skip


@pytest.mark.e2e
def test_the_best_checkpoint_maximises_val_acc_that_peaks_before_the_last_epoch(make_cfg, tmp_path):
    """val/acc (higher is better) watched with monitor.mode=auto: the best checkpoint is the epoch of
    the highest val/acc, though neither the last epoch nor the lowest val/acc is there."""
    metrics = train(make_cfg(*PEAK_THEN_FALL, "trainer.max_epochs=6", "callbacks.early_stopping.patience=100"))
    assert metrics["monitor"] == "val/acc" and metrics["mode"] == "max" and metrics["epochs"] == 6
    acc = epoch_curve(tmp_path, metrics, "val/acc")
    peak = int(acc.idxmax())
    # One highest epoch, not the last and not the lowest: only a checkpoint that maximises finds it.
    assert (acc == acc.max()).sum() == 1 and peak != acc.index[-1] and acc.idxmin() != peak
    assert Path(metrics["best_ckpt"]).name == f"epoch_{peak:03d}.ckpt"
    best = torch.load(metrics["best_ckpt"], weights_only=True)
    assert best["epoch"] == peak
    state = next(v for k, v in best["callbacks"].items() if k.startswith("BestCheckpoint"))
    assert float(state["best_model_score"]) == pytest.approx(acc.max(), rel=1e-6)
    assert metrics["val"]["val/acc"] == pytest.approx(acc.max(), rel=1e-6)  # the best checkpoint validated again


@pytest.mark.e2e
def test_early_stopping_on_val_acc_stops_patience_epochs_after_its_highest_epoch(make_cfg, tmp_path):
    patience, max_epochs = 2, 10
    metrics = train(make_cfg(*PEAK_THEN_FALL, f"trainer.max_epochs={max_epochs}",
                             f"callbacks.early_stopping.patience={patience}"))  # fmt: skip
    acc = epoch_curve(tmp_path, metrics, "val/acc")
    peak = int(acc.idxmax())  # the first of equal values: early stopping waits for a strict improvement
    # val/acc rose every epoch up to its peak, at or after epoch `patience`: early stopping that took
    # a lower val/acc for better would have stopped the run at epoch `patience` instead.
    assert acc.loc[:peak].diff().dropna().gt(0).all() and peak >= patience
    assert metrics["epochs"] == peak + patience + 1 < max_epochs  # epochs count from 0: stopped at peak + patience


def search(cli, sweep, *overrides: str, trials: int = 3) -> tuple[int, str]:
    """`python train.py -m hydra/sweeper=litlab_optuna` over the learning rate, in `sweep`:
    (exit code, what it printed)."""
    code, out, err = cli(
        "train.py", "-m", "hydra/sweeper=litlab_optuna", *overrides, "optimizer.lr=tag(log, interval(1e-4, 1e-1))",
        *QUICK, *LIGHT, f"hydra.sweeper.n_trials={trials}", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    return code, out + err


def study_direction_and_values(sweep_dir) -> tuple[str, list[float]]:
    with sqlite3.connect(sweep_dir / "optuna.db") as db:
        (direction_name,) = db.execute("select direction from study_directions").fetchone()
        values = [v for (v,) in db.execute("select value from trial_values")]
    return direction_name, values


@pytest.mark.slow
@pytest.mark.e2e
def test_the_search_maximises_val_acc_with_the_default_direction(tmp_path, cli):
    """The plain sweeper with monitor.metric=val/acc and no direction given maximises accuracy."""
    sweep = tmp_path / "study"
    code, printed = search(cli, sweep, "monitor.metric=val/acc")
    assert code == 0, printed[-3000:]
    name, values = study_direction_and_values(sweep)
    assert name == "MAXIMIZE" and len(values) == 3
    best = OmegaConf.load(sweep / "best.yaml")
    assert best.direction == "maximize" and best.value == pytest.approx(max(values))
    accs = [m["val"]["val/acc"] for m in job_metrics(sweep).values()]
    assert best.value == pytest.approx(max(accs))


@pytest.mark.slow
@pytest.mark.e2e
def test_the_search_minimises_a_lower_is_better_metric(tmp_path, cli):
    sweep = tmp_path / "study"
    code, printed = search(cli, sweep, "data=diabetes", "monitor.metric=val/rmse")
    assert code == 0, printed[-3000:]
    name, values = study_direction_and_values(sweep)
    assert name == "MINIMIZE"
    best = OmegaConf.load(sweep / "best.yaml")
    assert best.direction == "minimize" and best.value == pytest.approx(min(values))


def test_a_direction_that_contradicts_the_metric_is_refused(tmp_path, cli):
    sweep = tmp_path / "study"
    code, printed = search(cli, sweep, "monitor.metric=val/acc", "hydra.sweeper.direction=minimize", trials=2)
    assert code == 2
    lines = [line for line in printed.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "hydra.sweeper.direction=minimize contradicts monitor.metric=val/acc" in lines[0]
    assert not list(sweep.glob("*/metrics.json"))  # no trial ran
