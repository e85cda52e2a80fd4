"""Which setting of a sweep is better, said with an interval and a test.

A group is one setting of the swept parameters, replicated over seeds (`seed=0,1,2`) or folds
(`data.fold=0,1,2,3,4`). Each group gets Student's t interval of its mean. Every other group is
compared with the best one on the replicates they share, paired: a paired t-test over seeds, or,
over folds, Nadeau and Bengio's corrected resampled t-test, whose variance grows by n_test/n_train
because the folds' models share most of their training rows (with K folds that ratio is 1/(K-1)).
The p-values are adjusted by Holm's method for the number of comparisons.

A single replicate says nothing about noise: with fewer than 2 shared replicates there is no test.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

LEVEL = 0.95  # the confidence of every interval
ALPHA = 1 - LEVEL  # a comparison's adjusted p below it: "worse"


@dataclass(frozen=True)
class Interval:
    """The mean of `n` replicates, their sample standard deviation (ddof=1) and Student's t interval
    of the mean (NaN bounds for a single replicate)."""

    mean: float
    std: float
    n: int
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def half_width(std: float, n: int, level: float = LEVEL) -> float:
    """Half the width of Student's t interval of a mean of `n` values of sample std `std`; NaN for n < 2."""
    return float(stats.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n) if n >= 2 else math.nan


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    x = np.asarray(values, dtype=np.float64)
    mean, n = float(x.mean()), len(x)
    if n < 2:
        return Interval(mean, math.nan, n, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = half_width(std, n, level)
    return Interval(mean, std, n, mean - half, mean + half)


def constant_p(d: np.ndarray) -> float | None:
    """Differences that do not vary (to rounding) leave no noise to test against: p 1.0 if they are all 0,
    else 0.0 (one setting better on every replicate by the same amount); None where they vary."""
    if np.allclose(d, d[0], rtol=1e-9, atol=1e-12):
        return 1.0 if np.allclose(d, 0, atol=1e-12) else 0.0
    return None


def paired_t_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p of the paired t-test of a - b (replicates of the same seeds)."""
    d = np.subtract(a, b, dtype=np.float64)
    fixed = constant_p(d)
    return fixed if fixed is not None else float(stats.ttest_rel(a, b).pvalue)


def corrected_t_p(a: Sequence[float], b: Sequence[float], test_train_ratio: float) -> float:
    """Two-sided p of Nadeau and Bengio's corrected resampled t-test of a - b over k folds or
    resamples: t = mean(d) / sqrt((1/k + n_test/n_train) * var(d)), k - 1 degrees of freedom."""
    d = np.subtract(a, b, dtype=np.float64)
    if (fixed := constant_p(d)) is not None:
        return fixed
    k = len(d)
    t = float(d.mean()) / math.sqrt(float(d.var(ddof=1)) * (1 / k + test_train_ratio))
    return float(2 * stats.t.sf(abs(t), k - 1))


def compared_p(a: Sequence[float], b: Sequence[float], folds: int) -> float:
    """The p-value of a - b over shared replicates: folds of k-fold (folds > 1) or seeds; NaN below 2."""
    if len(a) < 2:
        return math.nan
    return corrected_t_p(a, b, 1 / (folds - 1)) if folds > 1 else paired_t_p(a, b)


def holm(pvalues: Sequence[float]) -> list[float]:
    """The p-values adjusted by Holm's step-down method (family-wise error rate)."""
    if not pvalues:
        return []
    return [float(p) for p in multipletests(list(pvalues), method="holm")[1]]


@dataclass(frozen=True)
class Comparison:
    """One group against the best: the mean difference (best - this, on the shared replicates), the
    test's p-value and Holm's adjustment of it; p NaN where fewer than 2 replicates are shared."""

    group: str
    shared: int
    difference: float
    p: float
    p_holm: float

    @property
    def worse(self) -> bool:
        return self.p_holm < ALPHA


@dataclass(frozen=True)
class Verdict:
    """The groups' intervals, best first, and each other group compared with the best."""

    metric: str
    test: str  # which test compared them: "paired t-test" or "corrected resampled t-test"
    intervals: dict[str, Interval]
    comparisons: list[Comparison]

    @property
    def best(self) -> str:
        return next(iter(self.intervals))

    def sentence(self) -> str:
        """The report's answer in words: which group is best, which cannot be told from it, which are worse."""
        best = self.intervals[self.best]
        words = [f"{self.best} is best on {self.metric} ({best.mean:.4f} ± {best.half_width:.4f})"]
        for c in self.comparisons:
            if math.isnan(c.p_holm):
                words.append(f"{c.group} is not compared ({c.shared} shared replicate(s); a test needs 2)")
            elif c.worse:
                words.append(f"{c.group} is worse (p = {c.p_holm:.2g}, Holm-adjusted)")
            else:
                words.append(f"{c.group} is not distinguishable from it (p = {c.p_holm:.2g}, Holm-adjusted)")
        return "; ".join(words)


def verdict(replicates: Mapping[str, Mapping[object, float]], metric: str, mode: str, folds: int = 0) -> Verdict:
    """The verdict on `replicates` (group -> replicate key -> metric value): the groups ranked by
    their mean in `mode` ('max' or 'min'); compared with the paired t-test, or, when the replicates
    are `folds` folds of k-fold cross-validation, the corrected resampled t-test."""
    intervals = {g: t_interval(list(values.values())) for g, values in replicates.items()}
    order = sorted(intervals, key=lambda g: intervals[g].mean, reverse=mode == "max")
    best = order[0]
    raw: list[tuple[str, int, float, float]] = []
    for group in order[1:]:
        keys = [k for k in replicates[best] if k in replicates[group]]
        a, b = [replicates[best][k] for k in keys], [replicates[group][k] for k in keys]
        difference = float(np.mean(np.subtract(a, b))) if keys else math.nan
        raw.append((group, len(keys), difference, compared_p(a, b, folds)))
    tested = [p for *_, p in raw if not math.isnan(p)]
    adjusted = iter(holm(tested))
    comparisons = [Comparison(g, n, d, p, math.nan if math.isnan(p) else next(adjusted)) for g, n, d, p in raw]
    test = "corrected resampled t-test" if folds > 1 else "paired t-test"
    return Verdict(metric, test, {g: intervals[g] for g in order}, comparisons)
