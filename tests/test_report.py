"""The sweep report from crafted job dirs (metrics.json only, no training): every metric shown with
its best marked, --metric, tables that fit 80 columns uncut, plots that do not mislead."""

import json
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from scipy import stats
from statsmodels.stats.multitest import multipletests

from litlab.sweeps.compare import corrected_t_p
from litlab.sweeps.plots import heatmap_figure, metric_vs_param_figure, param_series
from litlab.sweeps.report import SweepReport

matplotlib.use("Agg")

DEEP = {"[64, 64, 64, 64]": 0.0, "[64, 64, 64, 64, 64, 64, 64, 64]": -0.05}  # depth -> effect on acc


def write_job(sweep: Path, job: int, overrides: list[str], acc: float, loss: float) -> None:
    """A completed job's metrics.json as train.py writes it, monitoring val/loss."""
    (sweep / str(job)).mkdir(parents=True)
    record = {"status": "completed", "monitor": "val/loss", "mode": "min", "overrides": overrides,
              "val": {"val/loss": loss, "val/acc": acc, "val/f1": acc - 0.02}, "wall_time_s": 3.5,
              "test": {"test/loss": loss + 0.1, "test/acc": acc - 0.01, "test/f1": acc - 0.03}}  # fmt: skip
    (sweep / str(job) / "metrics.json").write_text(json.dumps(record))


def kfold_sweep(sweep: Path) -> dict[int, tuple[float, float]]:
    """5 folds: the lowest val/loss (fold 1) is not the highest val/acc (fold 3)."""
    values = {0: (0.90, 0.20), 1: (0.91, 0.15), 2: (0.88, 0.22), 3: (0.95, 0.18), 4: (0.89, 0.21)}
    for fold, (acc, loss) in values.items():
        write_job(sweep, fold, ["data.num_folds=5", f"data.fold={fold}"], acc, loss)
    return values


def grid_sweep(sweep: Path, models: tuple[str, ...] = ("mlp", "cnn"), seeds: tuple[int, ...] = (1, 2)) -> None:
    """depth x lr x model x seed; cnn scores 0.2 above mlp, so pooling the two would hide both."""
    job = 0
    for depth, effect in DEEP.items():
        for lr in (0.001, 0.01, 0.1):
            for model in models:
                for seed in seeds:
                    acc = 0.5 + lr + effect + (0.2 if model == "cnn" else 0.0) + 0.01 * seed
                    overrides = [f"model.hidden_sizes={depth}", f"optimizer.lr={lr}", f"model={model}", f"seed={seed}"]
                    write_job(sweep, job, overrides, round(acc, 4), round(1 - acc, 4))
                    job += 1


def test_every_metric_is_shown_monitor_first_and_each_best_is_marked(tmp_path):
    values = kfold_sweep(tmp_path)
    report = SweepReport.load(tmp_path)
    assert report.metric_columns == ["val/loss", "val/acc", "val/f1", "test/loss", "test/acc", "test/f1"]
    assert report.jobs.job.tolist()[0] == "1"  # sorted by val/loss, lowest first
    report.write(show=False)
    text = (tmp_path / "report.md").read_text()
    jobs = {row.split(" | ")[0].strip("| "): row for row in text.splitlines() if re.match(r"\| \d \|", row)}
    assert "**0.15**" in jobs["1"] and "**0.95**" in jobs["3"]  # val/loss: min; val/acc: max
    assert "**" not in jobs["0"] and jobs["1"].count("**") == 4  # val/loss, test/loss bold in job 1
    accs = np.array([acc for acc, _ in values.values()])
    grouped = text.split("## Grouped")[1]
    assert f"{accs.mean():.4f} ± {accs.std(ddof=1):.4f}" in grouped  # accuracy too, not only the loss
    assert "test/f1" in grouped.splitlines()[2]


def test_metric_option_sorts_by_it_and_an_unknown_one_is_one_line(tmp_path, cli):
    kfold_sweep(tmp_path)
    SweepReport.load(tmp_path).write(show=False)  # the sweep's own report, by its monitored val/loss
    own = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    code, out, err = cli("litlab", "report", str(tmp_path), "--metric", "val/acc")
    assert code == 0, err
    beside = tmp_path / "report-val_acc"  # written beside the sweep's own report, not over it
    assert pd.read_csv(beside / "report.csv").job.tolist()[:2] == [3, 1]  # highest val/acc first
    assert "sorted by val/acc" in out and "Sorted by val/acc (max)" in (beside / "report.md").read_text()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == own
    code, out, err = cli("litlab", "report", str(tmp_path), "--metric", "val/acuracy")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "'val/acuracy' is not one the jobs recorded; available: val/loss, val/acc, val/f1, test/loss" in err


def test_tables_fit_80_columns_and_cut_no_value(tmp_path):
    grid_sweep(tmp_path)
    report = SweepReport.load(tmp_path)
    console = Console(width=80, record=True, color_system=None)
    report.print(report.grouped(), console)
    text = console.export_text()
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    assert "│ hidden_sizes" in text.replace("┃", "│")  # model.hidden_sizes, shortened
    cells, _ = report.job_table()
    for row in cells.itertuples(index=False):  # every value of the job, whole, in one of its rows
        lines = " ".join(line for line in text.splitlines() if line.startswith(f"│ {row.job} "))
        for value in row[1:]:
            assert f" {value} " in lines, (row.job, value)
    assert "[64, 64, 64, 64, 64, 64, 64, 64]" in text and text.count("┃ job ") >= 2  # split, job in each part
    grouped, _ = report.grouped_table(report.grouped())
    assert all(v in text for v in grouped["test/f1"]), "every mean ± std in full"


def test_line_plots_keep_other_parameters_apart_and_skip_seeds(tmp_path):
    grid_sweep(tmp_path, models=("mlp",))
    report = SweepReport.load(tmp_path)
    done = report.in_sweep_order()
    series = param_series(done, "val/acc", "optimizer.lr", ["model.hidden_sizes"])
    lines = series[()]  # one facet: one other parameter
    assert list(lines) == list(DEEP)  # a line per depth, in sweep order
    for depth, effect in DEEP.items():
        assert lines[depth].index.tolist() == [0.001, 0.01, 0.1]
        assert lines[depth]["mean"].tolist() == pytest.approx([0.515 + lr + effect for lr in (0.001, 0.01, 0.1)])
        assert lines[depth]["n"].tolist() == [2, 2, 2]  # the two seeds
    fig = metric_vs_param_figure(report, done, "optimizer.lr")
    drawn = {c.get_label(): c.lines[0].get_ydata().tolist() for c in fig.axes[0].containers}  # errorbars
    labels = {
        "model.hidden_sizes=4x64": "[64, 64, 64, 64]",
        "model.hidden_sizes=8x64": "[64, 64, 64, 64, 64, 64, 64, 64]",
    }
    losses = param_series(done, "val/loss", "optimizer.lr", ["model.hidden_sizes"])[()]  # the report's metric
    assert drawn == {label: pytest.approx(losses[depth]["mean"].tolist()) for label, depth in labels.items()}
    names = {p.name for p in report.write(show=False)}
    assert "metric_vs_seed.png" not in names and "metric_vs_optimizer.lr.png" in names  # seeds are no trend


def test_line_plots_facet_over_a_third_parameter(tmp_path):
    grid_sweep(tmp_path, seeds=(1,))
    report = SweepReport.load(tmp_path)
    facets = param_series(report.in_sweep_order(), "val/acc", "optimizer.lr", ["model.hidden_sizes", "model"])
    assert list(facets) == [("mlp",), ("cnn",)] and all(list(lines) == list(DEEP) for lines in facets.values())
    assert facets[("cnn",)]["[64, 64, 64, 64]"]["mean"].iloc[0] == pytest.approx(0.711)  # cnn alone, not pooled
    fig = metric_vs_param_figure(report, report.jobs, "optimizer.lr")
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["model=mlp", "model=cnn"]


def test_kfold_report_draws_no_line_across_folds(tmp_path):
    kfold_sweep(tmp_path)
    names = {p.name for p in SweepReport.load(tmp_path).write(show=False)}
    assert not any(n.startswith("metric_vs_") for n in names), names


def test_heatmap_colours_span_the_data_and_name_the_metric():
    table = pd.DataFrame([[0.33, 0.70], [0.95, np.nan]], index=pd.Index([1, 2], name="depth"),
                         columns=pd.Index([0.1, 0.01], name="lr"))  # fmt: skip
    fig = heatmap_figure(table, "val/acc", "max", "title")
    ax, bar = fig.axes
    im = ax.images[0]
    assert (im.norm.vmin, im.norm.vmax) == (0.33, 0.95)  # nothing clipped: the ends are the data's
    assert im.cmap(im.norm(0.33)) != im.cmap(im.norm(0.70))
    assert bar.get_ylabel() == "val/acc"
    assert {t.get_text() for t in ax.texts} == {"0.330", "0.700", "0.950", "failed"}
    assert next(t for t in ax.texts if t.get_text() == "failed").get_color() == "black"  # legible on the blank cell


def test_a_sweep_whose_every_job_failed_still_gets_its_report(tmp_path, cli):
    """No metric at all, and the grouped table over seeds empty: the report says what failed."""
    for job, seed in enumerate((1, 2)):
        (tmp_path / str(job)).mkdir()
        error = "InstantiationException: no such callback"
        record = {"status": "failed", "error": error, "overrides": [f"seed={seed}"]}
        (tmp_path / str(job) / "metrics.json").write_text(json.dumps(record))
    code, _, err = cli("litlab", "report", str(tmp_path))
    assert code == 0, err[-3000:]
    report = (tmp_path / "report.md").read_text()
    assert "2 jobs: 0 completed" in report and "no such callback" in report


def test_a_grid_over_seeds_says_which_setting_is_best_with_intervals_and_holm_adjusted_tests(tmp_path):
    """Three learning rates over five seeds: 0.003 best, 0.001 within noise of it, 0.1 clearly worse."""
    accs = {"0.003": [0.974, 0.969, 0.981, 0.972, 0.976], "0.001": [0.975, 0.962, 0.979, 0.97, 0.971],
            "0.1": [0.93, 0.925, 0.94, 0.931, 0.936]}  # fmt: skip
    for job, (lr, seed) in enumerate((lr, seed) for lr in accs for seed in range(5)):
        write_job(tmp_path, job, [f"optimizer.lr={lr}", f"seed={seed}"], accs[lr][seed], 1 - accs[lr][seed])
    report = SweepReport.load(tmp_path, metric="val/acc")
    found = report.verdict()
    assert found is not None
    assert list(found.intervals) == ["optimizer.lr=0.003", "optimizer.lr=0.001", "optimizer.lr=0.1"]
    raw = [stats.ttest_rel(accs["0.003"], accs[lr]).pvalue for lr in ("0.001", "0.1")]
    adjusted = multipletests(raw, method="holm")[1]
    assert [c.p_holm for c in found.comparisons] == pytest.approx(adjusted)
    assert adjusted[0] > 0.05 > adjusted[1]
    report.write(show=False)
    text = (report.out_dir / "report.md").read_text()
    assert text.splitlines()[2] == f"**{found.sentence()}.**"  # the answer first, under the title
    assert "optimizer.lr=0.001 is not distinguishable from it" in text and "optimizer.lr=0.1 is worse" in text
    grouped = pd.read_csv(report.out_dir / "report_grouped.csv").set_index("optimizer.lr")
    low, high = stats.t.interval(0.95, 4, loc=np.mean(accs["0.1"]), scale=stats.sem(accs["0.1"]))
    assert grouped.at[0.1, "val/acc ci_low"] == pytest.approx(low)
    assert grouped.at[0.1, "val/acc ci_high"] == pytest.approx(high)
    assert f"{low:.4f} to {high:.4f}" in text.split("## Grouped")[1]
    fig = metric_vs_param_figure(report, report.in_sweep_order(), "optimizer.lr")
    caps = fig.axes[0].containers[0].lines[1][0].get_ydata()  # the error bars' lower caps, by lr
    lows = sorted(stats.t.interval(0.95, 4, loc=np.mean(a), scale=stats.sem(a))[0] for a in accs.values())
    assert sorted(caps) == pytest.approx(lows)


def test_folds_compare_by_the_corrected_test_and_a_single_seed_gives_no_verdict(tmp_path):
    kfold, base = tmp_path / "kfold", [0.90, 0.91, 0.88, 0.95, 0.89]
    accs = {"[32]": base, "[64]": [acc + 0.01 + 0.002 * fold for fold, acc in enumerate(base)]}
    for job, (hidden, fold) in enumerate((hidden, fold) for hidden in accs for fold in range(5)):
        overrides = ["data.num_folds=5", f"model.hidden_sizes={hidden}", f"data.fold={fold}"]
        write_job(kfold, job, overrides, accs[hidden][fold], 0.2)
    found = SweepReport.load(kfold, metric="val/acc").verdict()
    assert found is not None and found.test == "corrected resampled t-test" and found.best == "model.hidden_sizes=[64]"
    assert found.comparisons[0].p == pytest.approx(corrected_t_p(accs["[64]"], accs["[32]"], 1 / 4))
    single = tmp_path / "single"
    for job, lr in enumerate((0.1, 0.01)):
        write_job(single, job, [f"optimizer.lr={lr}", "seed=0"], 0.9 + lr, 0.2)
    report = SweepReport.load(single)
    assert report.verdict() is None  # one seed: nothing to test against
    report.write(show=False)
    assert "is best" not in (single / "report.md").read_text()

