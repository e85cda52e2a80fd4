"""The metrics litlab logs equal scikit-learn's on the same predictions, and a mode that contradicts a
metric's direction (tests/test_directions.py) is refused saying which way the metric goes."""

import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from litlab.data_spec import Task
from litlab.errors import UserError
from litlab.models.metrics import checked_mode, direction, names, resolve_monitor, task_metrics

rng = np.random.default_rng(0)


def computed(task: Task, num_classes: int, outputs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    collection = task_metrics(task, num_classes, "val")
    collection.update(torch.as_tensor(outputs, dtype=torch.float32), torch.as_tensor(y))
    return {name: float(value) for name, value in collection.compute().items()}


def test_regression_metrics_equal_scikit_learns():
    y, pred = rng.normal(size=50), rng.normal(size=50)
    got = computed(Task.REGRESSION, 0, pred, y)
    assert names(Task.REGRESSION, "val") == ["val/loss", "val/mse", "val/rmse", "val/mae", "val/r2"]
    assert got["val/mse"] == pytest.approx(sk.mean_squared_error(y, pred), rel=1e-5)
    assert got["val/rmse"] == pytest.approx(sk.root_mean_squared_error(y, pred), rel=1e-5)
    assert got["val/mae"] == pytest.approx(sk.mean_absolute_error(y, pred), rel=1e-5)
    assert got["val/r2"] == pytest.approx(sk.r2_score(y, pred), rel=1e-4)


def test_classification_metrics_equal_scikit_learns():
    y = np.r_[np.arange(4), rng.integers(0, 4, 76)]  # every class present
    probs = rng.dirichlet(np.ones(4), size=80)
    got = computed(Task.MULTICLASS, 4, probs, y)
    assert names(Task.MULTICLASS, "test") == ["test/loss", "test/acc", "test/f1"]
    assert got["val/acc"] == pytest.approx(sk.accuracy_score(y, probs.argmax(1)), rel=1e-6)
    assert got["val/f1"] == pytest.approx(sk.f1_score(y, probs.argmax(1), average="macro"), rel=1e-5)
    y2 = np.r_[[0, 1], rng.integers(0, 2, 58)]
    p = rng.uniform(size=60)
    binary = computed(Task.BINARY, 2, np.c_[1 - p, p], y2)
    assert names(Task.BINARY, "val") == ["val/loss", "val/acc", "val/f1", "val/auroc"]
    assert binary["val/auroc"] == pytest.approx(sk.roc_auc_score(y2, p), rel=1e-5)


def test_a_mode_against_the_metric_or_a_metric_not_logged_is_refused_saying_why():
    with pytest.raises(UserError, match="monitor.mode=max contradicts val/loss, whose lower values are better.*"
                                        r"Leave monitor.mode=auto \(or set min\)"):  # fmt: skip
        checked_mode("val/loss", "max", "monitor.mode")
    with pytest.raises(UserError, match=r"hydra.sweeper.direction=min contradicts val/acc, whose higher values"):
        checked_mode("val/acc", "min", "hydra.sweeper.direction")
    with pytest.raises(UserError, match=r"monitor.mode='up' is invalid; valid: auto, min, max"):
        checked_mode("val/acc", "up", "monitor.mode")
    logged = names(Task.MULTICLASS, "val")
    assert resolve_monitor("val/acc", "auto", logged) == ("val/acc", "max")
    with pytest.raises(UserError, match=r"^monitor.mode=min contradicts val/acc"):
        resolve_monitor("val/acc", "min", logged)
    with pytest.raises(UserError, match=r"monitor.metric='val/r2' is not logged for this task; valid: val/loss, "
                                        r"val/acc, val/f1"):  # fmt: skip
        resolve_monitor("val/r2", "auto", logged)
    with pytest.raises(UserError, match=r"monitor.metric='val/auc' is not a metric litlab logs; valid: val/<"):
        direction("val/auc")
