"""Which setting is better: intervals and tests checked against scipy and statsmodels on the same
inputs, the corrected resampled t-test against its formula computed by hand, and the verdict's words;
two evaluations of the same rows compared by the paired bootstrap (`litlab report --compare`)."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
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


def evaluation_dir(folder: Path, truth: np.ndarray, predicted: np.ndarray, rows: np.ndarray | None = None) -> Path:
    """An evaluate.py run dir as it writes it: evaluation.json and test_predictions.csv, row first."""
    folder.mkdir()
    (folder / "evaluation.json").write_text(json.dumps({"status": "completed", "split": "test"}))
    rows = np.arange(100, 100 + len(truth)) if rows is None else rows
    frame = pd.DataFrame({"row": rows, "true_class": truth, "true_label": truth, "pred_class": predicted})
    frame.to_csv(folder / "test_predictions.csv", index=False)
    return folder


def test_two_evaluations_of_the_same_rows_are_compared_by_the_paired_bootstrap_scipy_gives(tmp_path, cli):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 300)
    better = np.where(rng.random(300) < 0.95, y, (y + 1) % 3)
    worse = np.where(rng.random(300) < 0.80, y, (y + 2) % 3)
    order = rng.permutation(300)  # B wrote its rows in another order: they are matched by row, not by line
    a = evaluation_dir(tmp_path / "a", y, better)
    b = evaluation_dir(tmp_path / "b", y[order], worse[order], rows=np.arange(100, 400)[order])
    code, out, err = cli("litlab", "report", "--compare", str(a), str(b))
    assert code == 0, err
    found = stats.bootstrap((np.arange(300),), lambda i: np.mean(y[i] == better[i]) - np.mean(y[i] == worse[i]),
                            n_resamples=1000, method="percentile", vectorized=False,
                            random_state=np.random.default_rng(0)).confidence_interval  # fmt: skip
    difference = np.mean(y == better) - np.mean(y == worse)
    line = next(line for line in out.splitlines() if line.startswith("acc:"))
    assert line.startswith(f"acc: A {np.mean(y == better):.4f}, B {np.mean(y == worse):.4f}, A - B {difference:+.4f} (")
    low, high = (float(v) for v in line.split("(")[1].split(")")[0].split(" to "))
    width = found.high - found.low  # drawn by confusion-matrix cell: scipy's within Monte Carlo error
    assert low == pytest.approx(found.low, abs=width / 10) and high == pytest.approx(found.high, abs=width / 10)
    assert line.endswith("): A is better")
    code, out, _ = cli("litlab", "report", "--compare", str(a), str(a))
    assert "acc: A" in out and out.count("not distinguishable on these rows") == 2  # acc and macro F1


def test_evaluations_of_other_rows_or_dirs_of_no_evaluation_are_refused_in_one_line(tmp_path, cli):
    y = np.array([0, 1, 1, 0])
    a = evaluation_dir(tmp_path / "a", y, y)
    other = evaluation_dir(tmp_path / "other", y, y, rows=np.array([1, 2, 3, 4]))
    (tmp_path / "empty").mkdir()
    for b, says in ((other, "scored other rows: compare two evaluations of the same split"),
                    (tmp_path / "empty", "is not a dir of litlab evaluate (FileNotFoundError")):  # fmt: skip
        code, out, err = cli("litlab", "report", "--compare", str(a), str(b))
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
