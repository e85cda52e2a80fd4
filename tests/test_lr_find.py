"""tune=lr_find: suggestions read against log10(lr) survive noise, the run writes its curve and
record and prints the override, and the suggested rate trains digits as well as the default."""

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from litlab.run.lr_curve import suggest

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop

N = 100


def within_3x(lr: float, best: float) -> bool:
    return best / 3 <= lr <= best * 3


def linear_gradient_pick(lrs: np.ndarray, smooth: np.ndarray) -> float:
    """Where the smoothed loss falls fastest against the rate itself (not its log)."""
    kept = np.isfinite(smooth)
    return float(lrs[kept][np.argmin(np.gradient(smooth[kept], lrs[kept]))])


def issue_curve() -> tuple[np.ndarray, np.ndarray, float]:
    """The synthetic curve of Lightning's issue #21141: a loss that keeps falling, fastest at the
    top rate, over rates 1e-8..1 spaced as the range test spaces them."""
    x = np.linspace(-50, 50, N)
    lrs = 1e-8 * (1 / 1e-8) ** ((np.arange(N) + 1) / N)
    return lrs, (-(x**2) - 30 * x + 4000) / 1000, 1.0


def range_test_curve() -> tuple[np.ndarray, np.ndarray, float]:
    """A plateau, a fall steepest at 1e-3, a minimum, then divergence, over 1e-6..1."""
    lrs = np.logspace(-6, 0, N)
    log = np.log10(lrs)
    loss = 2.3 - 2.0 / (1 + np.exp(-(log + 3) * 3)) + np.where(log > -1.3, (log + 1.3) ** 2 * 8, 0)
    return lrs, loss, 1e-3


@pytest.mark.parametrize("seed", range(20))
def test_suggestions_on_noisy_curves_stay_near_the_best_rate(seed):
    """Noise as in the issue (uniform ±0.1): the steepest point read against log10(lr) stays
    within 3x of the noise-free one, and the valley too on a range-test-shaped curve; the
    steepest point against the linear rate lands decades too low on both."""
    noise = np.random.RandomState(seed).uniform(-0.1, 0.1, N)
    lrs, loss, best = issue_curve()
    found, smooth = suggest(lrs, loss + noise)
    assert within_3x(found.steep, best) and not within_3x(linear_gradient_pick(lrs, smooth), best)
    lrs, loss, best = range_test_curve()
    found, smooth = suggest(lrs, loss + noise)
    assert within_3x(found.steep, best) and within_3x(found.valley, best), found
    assert not within_3x(linear_gradient_pick(lrs, smooth), best)


def test_the_diverged_end_is_left_out():
    lrs, loss, _ = range_test_curve()
    found, smooth = suggest(lrs, loss)
    assert np.isnan(smooth[-1]) and np.isfinite(smooth[0])  # cut where the loss rose above its start
    assert found.minimum < 10**-1.3 / 10 * 3  # a tenth of the rate at the bottom, before the rise


def test_lr_find_writes_its_curve_and_record_and_prints_the_override(tmp_path, cli):
    run_dir = tmp_path / "run"
    code, out, err = cli("train.py", "tune=lr_find", "tune.num_training=40", "logger=tensorboard",
                         "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}")  # fmt: skip
    assert code == 0, err[-3000:]
    assert "Finding best initial lr" not in err  # the tuner's bar, off a terminal: one huge line in a log
    record = json.loads((run_dir / "lr_find.json").read_text())
    assert len(record["lr"]) == len(record["loss"]) and 30 <= len(record["lr"]) <= 40  # may stop at divergence
    assert record["loss"][0] == pytest.approx(np.log(10), abs=0.15)  # each step's loss: 10 classes start at ln 10
    lr = record["suggestions"]["steep"]
    assert record["override"] == f"optimizer.lr={float(f'{lr:.2g}'):g}"
    # The suggestion read against the recorded losses themselves (not the smoothing it came from): the
    # loss has fallen well below its start there (a fifth of its whole fall or more; the flat start
    # is within noise of it) and is still falling: the lowest loss comes at a higher rate, before divergence.
    lrs, loss = np.asarray(record["lr"]), np.asarray(record["loss"])
    at = int(np.argmin(np.abs(np.log10(lrs) - np.log10(lr))))
    start, near, lowest = np.median(loss[:5]), np.median(loss[max(at - 1, 0) : at + 2]), int(np.nanargmin(loss))
    curve = list(zip(lrs.round(6), loss.round(3), strict=True))
    assert start - near >= (start - loss[lowest]) / 5, (lr, curve)
    assert at < lowest, (lr, curve)
    assert (run_dir / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    assert any((run_dir / "lr_find").glob("events.out.tfevents.*"))  # the figure in TensorBoard
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["lr_find"]["override"] == record["override"]
    command = "to train with it: litlab train logger=tensorboard trainer.enable_progress_bar=false"
    assert f"{command} {record['override']}" in out + err  # the run's overrides but tune.*, and the rate
    assert not list(run_dir.glob(".lr_find_*.ckpt")) and not (run_dir / "checkpoints").exists()  # nothing trained


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["experiment=breast_cancer_logistic"], "L-BFGS searches its own step length"),
        (["tune.suggestion=best"], "tune.suggestion='best' is invalid: choose one of valley, steep, minimum"),
        (["tune.min_lr=1", "tune.max_lr=0.1"], "give 0 < min_lr < max_lr"),
    ],
)
def test_lr_find_refuses_what_it_cannot_do_in_one_line(tmp_path, cli, overrides, says):
    code, out, err = cli("train.py", "tune=lr_find", *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 2 and says in err and "Traceback" not in err, err[-2000:]


@pytest.mark.slow
def test_the_suggested_rate_trains_digits_at_least_as_well_as_the_default(tmp_path, cli):
    """Over three seeds, `tune=lr_find tune.apply=true` against the default optimizer.lr."""
    accuracy: dict[str, list[float]] = {"default": [], "tuned": []}
    for seed in (42, 1, 2):
        for name, extra in (("default", []), ("tuned", ["tune=lr_find", "tune.apply=true"])):
            run_dir = tmp_path / f"{name}-{seed}"
            code, _, err = cli("train.py", *extra, f"seed={seed}", "logger=none", "trainer.enable_progress_bar=false",
                               f"hydra.run.dir={run_dir}")  # fmt: skip
            assert code == 0, err[-3000:]
            accuracy[name].append(json.loads((run_dir / "metrics.json").read_text())["test"]["test/acc"])
    config = (tmp_path / "tuned-42" / "config.yaml").read_text()
    assert "lr: 0.001\n" not in config  # trained with the suggestion, recorded as such
    assert np.mean(accuracy["tuned"]) >= np.mean(accuracy["default"]), accuracy


def test_apply_trains_with_the_suggestion_and_one_cycle_follows_it(tmp_path, cli):
    run_dir = tmp_path / "run"
    code, _, err = cli("train.py", "tune=lr_find", "tune.apply=true", "tune.num_training=30", "scheduler=onecycle",
                       "trainer.max_epochs=1", "logger=none", "trainer.enable_progress_bar=false",
                       f"hydra.run.dir={run_dir}")  # fmt: skip
    assert code == 0, err[-3000:]
    lr = float(json.loads((run_dir / "lr_find.json").read_text())["override"].split("=")[1])
    config = OmegaConf.load(run_dir / "config.yaml")
    assert config.optimizer.lr == lr != 0.001 and config.scheduler.max_lr == lr  # the record says what trained
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
