"""How much a split's score could move with other rows like these: a bootstrap 95% interval of each
headline metric (the split's rows resampled with replacement, seeded), and the paired bootstrap of
the difference between two models scored on the same rows.

A score on 270 test rows moves by about a point of accuracy when the rows change; two runs whose
scores differ by less may not differ at all. The paired bootstrap resamples the same rows for both
models, so the rows both get right or both get wrong cancel out of the difference.
"""

from collections.abc import Callable

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


# The metrics given an interval, by their names in the report's scalars.
CLASSIFICATION: dict[str, Metric] = {"acc": accuracy, "f1_macro": f1_macro}
REGRESSION: dict[str, Metric] = {"mae": mae, "rmse": rmse, "r2": r2}


def interval(metric: Metric, y: np.ndarray, pred: np.ndarray, seed: int = SEED) -> tuple[float, float]:
    """The percentile bootstrap interval of `metric` over the rows (RESAMPLES resamples)."""
    rows = np.arange(len(y))
    result = stats.bootstrap(
        (rows,), lambda idx: metric(y[idx], pred[idx]), n_resamples=RESAMPLES, confidence_level=LEVEL,
        method="percentile", vectorized=False, random_state=np.random.default_rng(seed),
    )  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def intervals(
    y: np.ndarray, pred: np.ndarray, classification: bool, seed: int = SEED
) -> dict[str, tuple[float, float]]:
    """Each headline metric's interval: accuracy and macro F1, or MAE, RMSE and R²."""
    metrics = CLASSIFICATION if classification else REGRESSION
    return {name: interval(metric, y, pred, seed) for name, metric in metrics.items()}


def paired_difference(
    metric: Metric, y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, seed: int = SEED
) -> tuple[float, float, float]:
    """metric(a) - metric(b) on the same rows, and its paired percentile bootstrap interval: each
    resample draws the same rows for both."""
    rows = np.arange(len(y))

    def difference(idx: np.ndarray) -> float:
        return metric(y[idx], pred_a[idx]) - metric(y[idx], pred_b[idx])

    result = stats.bootstrap(
        (rows,), difference, n_resamples=RESAMPLES, confidence_level=LEVEL, method="percentile",
        vectorized=False, random_state=np.random.default_rng(seed),
    )  # fmt: skip
    return difference(rows), float(result.confidence_interval.low), float(result.confidence_interval.high)
