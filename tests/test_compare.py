"""Which setting is better: intervals and tests checked against scipy and statsmodels on the same
inputs, the corrected resampled t-test against its formula computed by hand, and the verdict's words."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from litlab.sweeps.compare import corrected_t_p, holm, t_interval, verdict

ACCS = [0.9741, 0.9667, 0.9815, 0.9704, 0.9778]


def test_the_interval_is_student_s_t_interval_of_the_mean():
    interval = t_interval(ACCS)
    low, high = stats.t.interval(0.95, len(ACCS) - 1, loc=np.mean(ACCS), scale=stats.sem(ACCS))
    assert (interval.low, interval.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert interval.std == pytest.approx(np.std(ACCS, ddof=1)) and interval.n == 5
    single = t_interval([0.97])
    assert single.mean == 0.97 and math.isnan(single.low) and math.isnan(single.std)  # one run: no interval


def test_the_corrected_resampled_t_test_is_nadeau_and_bengio_s_formula():
    a, b = [0.97, 0.96, 0.98, 0.95, 0.97], [0.95, 0.95, 0.97, 0.95, 0.94]
    d = [0.02, 0.01, 0.01, 0.0, 0.03]  # a - b
    mean, var = sum(d) / 5, sum((x - sum(d) / 5) ** 2 for x in d) / 4  # 0.014, 0.00013
    t = mean / math.sqrt((1 / 5 + 1 / 4) * var)  # 5 folds: n_test / n_train = 1/4
    assert t == pytest.approx(1.8304, abs=1e-4)
    assert corrected_t_p(a, b, 1 / 4) == pytest.approx(2 * stats.t.sf(t, 4))
    # Without the correction it is the one-sample t-test of the differences.
    assert corrected_t_p(a, b, 0.0) == pytest.approx(stats.ttest_1samp(d, 0).pvalue)


def test_differences_that_do_not_vary_are_no_difference_or_a_certain_one():
    a = [0.9, 0.8, 0.95]
    assert corrected_t_p(a, a, 0.25) == 1.0
    assert corrected_t_p(a, [x - 0.01 for x in a], 0.25) == 0.0  # better by 0.01 on every fold, to rounding
    assert verdict({"a": dict(enumerate(a)), "b": dict(enumerate(a))}, "val/acc", "max").comparisons[0].p == 1.0


def test_holm_adjusts_as_statsmodels_and_by_hand():
    p = [0.01, 0.04, 0.03]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06])  # 3 * 0.01; max(2 * 0.03, 1 * 0.04) for the others
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))
    assert holm([]) == []


def test_groups_are_paired_by_seed_whatever_order_their_runs_came_in():
    best = {0: 0.98, 1: 0.97, 2: 0.99, 3: 0.975, 4: 0.985}
    close = {4: 0.984, 3: 0.976, 2: 0.985, 1: 0.968, 0: 0.979}  # within the seeds' noise of best
    worse = {0: 0.90, 1: 0.91, 2: 0.905, 3: 0.895, 4: 0.91}
    once = {0: 0.5}
    result = verdict({"lr=0.1": worse, "lr=0.001": close, "lr=0.003": best, "lr=1": once}, "val/acc", "max")
    assert list(result.intervals) == ["lr=0.003", "lr=0.001", "lr=0.1", "lr=1"] and result.best == "lr=0.003"
    seeds = sorted(best)
    raw = [stats.ttest_rel([best[s] for s in seeds], [other[s] for s in seeds]).pvalue for other in (close, worse)]
    compared = {c.group: c for c in result.comparisons}
    assert [compared[g].p for g in ("lr=0.001", "lr=0.1")] == pytest.approx(raw)
    assert [compared[g].p_holm for g in ("lr=0.001", "lr=0.1")] == pytest.approx(holm(raw))
    assert compared["lr=0.1"].difference == pytest.approx(np.mean([best[s] - worse[s] for s in seeds]))
    assert compared["lr=1"].shared == 1 and math.isnan(compared["lr=1"].p)
    sentence = result.sentence()
    interval = t_interval(list(best.values()))
    assert sentence.startswith(f"lr=0.003 is best on val/acc ({interval.mean:.4f} ± {interval.half_width:.4f}); ")
    assert f"lr=0.001 is not distinguishable from it (p = {compared['lr=0.001'].p_holm:.2g}, Holm-adjusted)" in sentence
    assert f"lr=0.1 is worse (p = {compared['lr=0.1'].p_holm:.2g}, Holm-adjusted)" in sentence
    assert "lr=1 is not compared (1 shared replicate(s); a test needs 2)" in sentence


def test_folds_are_compared_with_the_corrected_test_and_a_lower_is_better_metric_ranks_upward():
    a = {0: 0.30, 1: 0.32, 2: 0.29, 3: 0.31, 4: 0.30}
    b = {0: 0.35, 1: 0.36, 2: 0.33, 3: 0.37, 4: 0.34}
    result = verdict({"b": b, "a": a}, "val/loss", "min", folds=5)
    assert result.best == "a" and result.test == "corrected resampled t-test"
    assert result.comparisons[0].p == pytest.approx(corrected_t_p(list(a.values()), list(b.values()), 1 / 4))
    assert result.comparisons[0].p > verdict({"b": b, "a": a}, "val/loss", "min").comparisons[0].p  # wider
