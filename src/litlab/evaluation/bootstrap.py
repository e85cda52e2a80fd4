"""How much a split's score could move with other rows like these: a bootstrap 95% interval of each
headline metric (the split's rows resampled with replacement, seeded), and the paired bootstrap of
the difference between two models scored on the same rows.

A score on 270 test rows moves by about a point of accuracy when the rows change; two runs whose
scores differ by less may not differ at all. The paired bootstrap resamples the same rows for both
models, so the rows both get right or both get wrong cancel out of the difference.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import r2_score

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95

# A metric of (targets, predictions, weights), each (N,): class ids or values, and how many times each
# row counts (None: once). A resample of the rows is a weighting: how often the draw took each row.
Metric = Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]


def accuracy(y: np.ndarray, pred: np.ndarray, w: np.ndarray | None = None) -> float:
    return float(np.average(y == pred, weights=w))


def f1_macro(y: np.ndarray, pred: np.ndarray, w: np.ndarray | None = None) -> float:
    """scikit-learn's f1_score(average="macro") over the classes in y or pred (of weight > 0), by
    counting: a thousand resamples in milliseconds, not seconds."""
    size = int(max(y.max(), pred.max())) + 1
    w = np.ones(len(y)) if w is None else w
    hits = np.bincount(y, weights=w * (y == pred), minlength=size)
    given = np.bincount(y, weights=w, minlength=size) + np.bincount(pred, weights=w, minlength=size)  # 2tp + fp + fn
    present = given > 0
    return float(np.mean(2 * hits[present] / given[present]))


def mae(y: np.ndarray, pred: np.ndarray, w: np.ndarray | None = None) -> float:
    return float(np.average(np.abs(pred - y), weights=w))


def rmse(y: np.ndarray, pred: np.ndarray, w: np.ndarray | None = None) -> float:
    return float(np.sqrt(np.average((pred - y) ** 2, weights=w)))


def r2(y: np.ndarray, pred: np.ndarray, w: np.ndarray | None = None) -> float:
    return float(r2_score(y, pred, sample_weight=w))


@dataclass(frozen=True)
class Score:
    """A headline metric and which way it is better (as torchmetrics' `higher_is_better`)."""

    compute: Metric
    higher_is_better: bool


# The metrics given an interval, by their names in the report's scalars.
CLASSIFICATION = {"acc": Score(accuracy, True), "f1_macro": Score(f1_macro, True)}
REGRESSION = {"mae": Score(mae, False), "rmse": Score(rmse, False), "r2": Score(r2, True)}


def resampled(columns: tuple[np.ndarray, ...], classes: bool, seed: int) -> tuple[tuple[np.ndarray, ...], Iterator]:
    """RESAMPLES draws of the rows with replacement, as (columns, an iterator of each draw's weights).
    Values (a regression): each draw's count of every row, from the rows scipy.stats.bootstrap
    draws with the same seed. Class ids: the rows grouped by their columns' values (a confusion
    matrix's cells) and each draw's count of rows per cell, multinomial with the cells' shares: the
    same distribution as drawing rows, in cells (at most K^2, or K^3 for two models) not rows per
    draw, which on 450,000 test rows is milliseconds, not seconds."""
    rng, rows = np.random.default_rng(seed), len(columns[0])
    if not classes:
        return columns, (np.bincount(rng.integers(0, rows, rows), minlength=rows) for _ in range(RESAMPLES))
    # One id per cell, ordered as the cells' values are (np.unique(axis=1)'s order, at a tenth of its time).
    sizes = tuple(int(c.max()) + 1 for c in columns)
    ids, per_cell = np.unique(np.ravel_multi_index(columns, sizes), return_counts=True)  # (cells,), (cells,)
    cells = tuple(c.astype(columns[0].dtype) for c in np.unravel_index(ids, sizes))
    return cells, iter(rng.multinomial(rows, per_cell / rows, size=RESAMPLES))


def percentile_interval(values: list[float]) -> tuple[float, float]:
    """The percentile bootstrap interval of a statistic's values over the resamples (as scipy's
    method="percentile": linear quantiles)."""
    low, high = np.quantile(values, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(low), float(high)


def intervals(
    y: np.ndarray, pred: np.ndarray, classification: bool, seed: int = SEED
) -> dict[str, tuple[float, float]]:
    """Each headline metric's interval: accuracy and macro F1, or MAE, RMSE and R², all over the same draws."""
    scores = CLASSIFICATION if classification else REGRESSION
    (y, pred), draws = resampled((y, pred), classification, seed)
    values: dict[str, list[float]] = {name: [] for name in scores}
    for w in draws:
        for name, score in scores.items():
            values[name].append(score.compute(y, pred, w))
    return {name: percentile_interval(found) for name, found in values.items()}


def paired_difference(
    metric: Metric, y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, classification: bool, seed: int = SEED
) -> tuple[float, float, float]:
    """metric(a) - metric(b) on the same rows, and its paired percentile bootstrap interval: each
    resample draws the same rows for both."""
    difference = metric(y, pred_a, None) - metric(y, pred_b, None)
    (y, pred_a, pred_b), draws = resampled((y, pred_a, pred_b), classification, seed)
    return difference, *percentile_interval([metric(y, pred_a, w) - metric(y, pred_b, w) for w in draws])
