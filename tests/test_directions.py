"""A metric's direction comes from the metric itself (litlab.models.metrics), and the best
checkpoint, early stopping and the Optuna study all follow it."""

import sqlite3

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from litlab.models.metrics import REGRESSION, direction
from litlab.run.train import train
from tests.helpers.config import LIGHT, QUICK
from tests.helpers.outputs import job_metrics


def test_every_logged_metric_declares_its_direction():
    assert direction("val/loss") == "min"
    assert [direction(f"val/{name}") for name in ("acc", "f1", "auroc", "r2")] == ["max"] * 4
    # Lower-is-better metrics whose names the old rule (loss/mse/mae suffix) did not know: rmse is one.
    assert "rmse" in REGRESSION and direction("val/rmse") == "min"
    assert [direction(f"test/{name}") for name in ("mse", "mae")] == ["min", "min"]


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
    log = pd.read_csv(tmp_path / "csv" / "metrics.csv").dropna(subset=["val/rmse"])
    per_epoch = log.groupby("epoch")["val/rmse"].last()
    assert per_epoch.idxmin() != per_epoch.idxmax()  # the test can tell the two directions apart
    best = torch.load(metrics["best_ckpt"], weights_only=True)
    assert best["epoch"] == per_epoch.idxmin()
    assert metrics["val"]["val/rmse"] == pytest.approx(per_epoch.min(), rel=1e-5)
    assert OmegaConf.load(tmp_path / "config.yaml").monitor.mode == "min"  # what ran, not 'auto'


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
