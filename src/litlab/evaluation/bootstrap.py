"""How much a split's score could move with other rows like these: a bootstrap 95% interval of each
headline metric (the split's rows resampled with replacement, seeded), and the paired bootstrap of
the difference between two models scored on the same rows.

A score on 270 test rows moves by about a point of accuracy when the rows change; two runs whose
scores differ by less may not differ at all. The paired bootstrap resamples the same rows for both
models, so the rows both get right or both get wrong cancel out of the difference.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy import stats
from sklearn.metrics import r2_score

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95

# A metric of (targets, predictions), both (N,): class ids, or values for a regression.
Metric = Callable[[np.ndarray, np.ndarray], float]


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(y == pred))


def f1_macro(y: np.ndarray, pred: np.ndarray) -> float:
    """scikit-learn's f1_score(average="macro") over the classes in y or pred, by counting: a thousand
    resamples in milliseconds, not seconds."""
    size = int(max(y.max(), pred.max())) + 1
    hits = np.bincount(y[y == pred], minlength=size)
    given = np.bincount(y, minlength=size) + np.bincount(pred, minlength=size)  # 2tp + fp + fn
    present = given > 0
    return float(np.mean(2 * hits[present] / given[present]))


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - y)))


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    return float(r2_score(y, pred))


@dataclass(frozen=True)
class Score:
    """A headline metric and which way it is better (as torchmetrics' `higher_is_better`)."""

    compute: Metric
    higher_is_better: bool


# The metrics given an interval, by their names in the report's scalars.
CLASSIFICATION = {"acc": Score(accuracy, True), "f1_macro": Score(f1_macro, True)}
REGRESSION = {"mae": Score(mae, False), "rmse": Score(rmse, False), "r2": Score(r2, True)}


def percentile_interval(statistic: Callable[[np.ndarray], float], rows: int, seed: int) -> tuple[float, float]:
    """The percentile bootstrap interval of `statistic` (of the row indices drawn) over `rows` rows."""
    result = stats.bootstrap(
        (np.arange(rows),), statistic, n_resamples=RESAMPLES, confidence_level=LEVEL, method="percentile",
        vectorized=False, random_state=np.random.default_rng(seed),
    )  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def on_rows(metric: Metric, y: np.ndarray, pred: np.ndarray, idx: np.ndarray) -> float:
    """`metric` on the rows `idx` (a resample's draw)."""
    return metric(y[idx], pred[idx])


def intervals(
    y: np.ndarray, pred: np.ndarray, classification: bool, seed: int = SEED
) -> dict[str, tuple[float, float]]:
    """Each headline metric's interval: accuracy and macro F1, or MAE, RMSE and R²."""
    scores = CLASSIFICATION if classification else REGRESSION
    return {
        name: percentile_interval(partial(on_rows, score.compute, y, pred), len(y), seed)
        for name, score in scores.items()
    }


def paired_difference(
    metric: Metric, y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, seed: int = SEED
) -> tuple[float, float, float]:
    """metric(a) - metric(b) on the same rows, and its paired percentile bootstrap interval: each
    resample draws the same rows for both."""

    def difference(idx: np.ndarray) -> float:
        return on_rows(metric, y, pred_a, idx) - on_rows(metric, y, pred_b, idx)

    return difference(np.arange(len(y))), *percentile_interval(difference, len(y), seed)
