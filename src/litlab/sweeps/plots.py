"""The sweep report's PNG plots: the metric against each swept parameter (seed and fold are
repeats, averaged, never a trend), one line per value of the other swept parameter, a heatmap over
two swept parameters whose colours span the data's min..max, and the validation curves of the best
runs from their TensorBoard or CSV logs."""

from pathlib import Path
from typing import Protocol

import matplotlib
import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from litlab import files
from litlab.files.run_record import RunRecord
from litlab.sweeps.compare import LEVEL, half_width


class Report(Protocol):
    """What the plots read of a sweep report (litlab.sweeps.report.SweepReport): no import of it here."""

    sweep_dir: Path
    out_dir: Path  # where the report's files go
    jobs: pd.DataFrame  # one row per job: status, swept parameters, final metrics
    params: list[str]
    monitor: str | None
    metric: str | None  # the metric the report sorts by: the one plotted
    mode: str  # its direction, 'min' or 'max'

    @property
    def group_params(self) -> list[str]: ...

    def in_sweep_order(self) -> pd.DataFrame: ...


def write_plots(report: Report, top: int = 5) -> list[Path]:
    """The PNGs: the metric against each swept parameter but seed and fold (repeats, not a trend),
    the heatmap when two such parameters were swept, the validation curves of the `top` jobs."""
    matplotlib.use("Agg")  # PNG files only, no display needed
    done = report.jobs[report.jobs.status == "completed"]
    if report.metric is None or done.empty:
        return []
    paths = [metric_vs_param(report, done, p) for p in report.group_params]
    if len(report.group_params) == 2:
        paths.append(heatmap(report, done, *report.group_params))
    curves = val_curves(report, done.head(top))
    return [p for p in [*paths, curves] if p is not None]


def save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    files.write_with(path, lambda p: fig.savefig(p, dpi=110, format="png"))  # the temporary name has no .png
    plt.close(fig)
    return path


def short_label(value: object) -> str:
    """'[64]' -> '1x64', '[64,64,64,64]' -> '4x64': lists of equal sizes, as a sweep over depth
    gives, all labelled alike; other values as they are."""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    items = text.strip("[]").replace(" ", "").split(",")
    if text.startswith("[") and items[0] and len(set(items)) == 1:
        return f"{len(items)}x{items[0]}"
    return text


def _axis_values(values: pd.Series, order: pd.Series) -> tuple[np.ndarray, list[str] | None, bool]:
    """x positions; tick labels for categorical values (in `order`); whether a log axis suits them."""
    if pd.api.types.is_numeric_dtype(values):
        v = values.to_numpy(dtype=float)
        log = bool((v > 0).all() and v.max() / v.min() >= 10)  # an order of magnitude or more
        return v, None, log
    cats = list(dict.fromkeys(order.astype(str)))  # sweep order, e.g. [64], [64,64], ...
    return np.array([cats.index(str(x)) for x in values], dtype=float), cats, False


Series = dict[tuple, dict[object, pd.DataFrame]]  # facet -> line -> mean, std, n by the parameter's value


def param_series(done: pd.DataFrame, metric: str, param: str, others: list[str]) -> Series:
    """`metric` against `param`, never pooled over the other swept parameters: one line per value
    of others[0], one facet per combination of others[1:] (key () when there are none). Each line:
    mean, std and n over the repeats (seeds, folds) by value of `param`."""
    groups = done.groupby([*others, param], sort=False, dropna=False)[metric]
    stats = groups.agg(["mean", "std", "size"]).rename(columns={"size": "n"})
    if not others:
        return {(): {metric: _along_x(stats)}}
    out: Series = {}
    for key, rows in stats.groupby(level=others if len(others) > 1 else others[0], sort=False):
        key = key if isinstance(key, tuple) else (key,)  # one level: a scalar key
        out.setdefault(key[1:], {})[key[0]] = _along_x(rows.droplevel(others))
    return out


def _along_x(line: pd.DataFrame) -> pd.DataFrame:
    """Numbers in increasing order, so the joining line does not zigzag; categories as the sweep ran them."""
    return line.sort_index() if pd.api.types.is_numeric_dtype(line.index) else line


def metric_vs_param_figure(report: Report, done: pd.DataFrame, param: str) -> Figure:
    """The metric's mean and 95% t interval against `param`, a line per value of the next swept parameter and a
    panel per value of the ones after it. Numbers are joined; categories (e.g. model) are not."""
    assert report.metric is not None  # write_plots draws nothing without one
    others = [p for p in report.group_params if p != param]
    done = done.loc[report.in_sweep_order().index.intersection(done.index, sort=False)]  # lines in sweep order
    facets = param_series(done, report.metric, param, others)
    ncols = min(len(facets), 3)
    nrows = -(-len(facets) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 4 * nrows), squeeze=False, sharey=True)
    _, cats, log = _axis_values(done[param], report.in_sweep_order()[param])
    for ax, (facet, lines) in zip(axes.flat, facets.items(), strict=False):
        for k, (line, stats) in enumerate(lines.items()):
            x = _axis_values(stats.index.to_series(), report.in_sweep_order()[param])[0]
            shift = 0.0 if cats is None else 0.08 * (k - (len(lines) - 1) / 2)  # side by side, not on top
            label = f"{others[0]}={short_label(line)}" if others else str(line)
            style = "o" if cats is not None else "o-"  # categories are not a scale: not joined
            half = [half_width(sd, n) for sd, n in zip(stats["std"], stats["n"], strict=True)]  # NaN: none drawn
            ax.errorbar(x + shift, stats["mean"], yerr=half, fmt=style, capsize=3, label=label)
        ax.set_title(", ".join(f"{p}={short_label(v)}" for p, v in zip(others[1:], facet, strict=True)), fontsize=9)
        if cats is not None:
            ax.set_xticks(range(len(cats)), [short_label(c) for c in cats])
            ax.set_xlim(-0.5, len(cats) - 0.5)
        if log:
            ax.set_xscale("log")
        ax.set(xlabel=param, ylabel=report.metric)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(facets) :]:
        ax.set_visible(False)
    fig.suptitle(f"{report.metric} against {param} (mean and {LEVEL:.0%} t interval over seeds/folds)", fontsize=10)
    return fig


def metric_vs_param(report: Report, done: pd.DataFrame, param: str) -> Path:
    """metric_vs_<param>.png (see metric_vs_param_figure)."""
    return save(metric_vs_param_figure(report, done, param), report.out_dir / f"metric_vs_{param}.png")


def annotate_cells(ax: plt.Axes, im: matplotlib.image.AxesImage, values: np.ndarray, mode: str) -> None:
    """Each cell's value (or "failed"), and a red outline on the best value of each row: where the optimum sits."""
    for (i, j), v in np.ndenumerate(values):
        shade = float(np.asarray(im.norm(v)))
        light = np.isnan(v) or (shade < 0.4 if mode == "min" else shade > 0.6)  # a failed cell is blank: white
        text = "failed" if np.isnan(v) else f"{v:.3f}"
        ax.text(j, i, text, ha="center", va="center", color="black" if light else "white", fontsize=8)
    for i, row in enumerate(values):
        if not np.isnan(row).all():
            j = int(np.nanargmax(row) if mode == "max" else np.nanargmin(row))
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))


def heatmap_table(report: Report, done: pd.DataFrame, rows: str, cols: str) -> pd.DataFrame:
    """The metric's mean for each pair of values, in sweep order (numbers sorted); NaN where every job failed."""
    table = done.pivot_table(index=rows, columns=cols, values=report.metric, aggfunc="mean", sort=False)
    in_order = report.in_sweep_order()
    table = table.reindex(index=list(dict.fromkeys(in_order[rows])), columns=list(dict.fromkeys(in_order[cols])))
    if pd.api.types.is_numeric_dtype(table.index):
        table = table.sort_index()
    if pd.api.types.is_numeric_dtype(table.columns):
        table = table.sort_index(axis=1)
    return table


def heatmap_figure(table: pd.DataFrame, metric: str, mode: str, title: str) -> Figure:
    """The table as coloured cells, each annotated with its value. The colours span exactly the
    data's min..max: no two different values share a colour at the ends of the bar."""
    values = table.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (None, None)
    fig, ax = plt.subplots(figsize=(1.1 * len(table.columns) + 2.5, 0.7 * len(table.index) + 2))
    cmap = "viridis" if mode == "max" else "viridis_r"  # bright = good either way
    im = ax.imshow(values, cmap=cmap, aspect="auto", vmin=low, vmax=high)
    ax.set_xticks(range(len(table.columns)), [short_label(c) for c in table.columns])
    ax.set_yticks(range(len(table.index)), [short_label(r) for r in table.index])
    ax.set(xlabel=table.columns.name, ylabel=table.index.name)
    annotate_cells(ax, im, values, mode)
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(title, fontsize=9)
    return fig


def heatmap(report: Report, done: pd.DataFrame, rows: str, cols: str) -> Path:
    """heatmap.png: the metric's mean over the repeats for each pair of values of `rows` and `cols`."""
    assert report.metric is not None  # write_plots draws nothing without one
    runs = int(done.groupby([rows, cols]).size().max())
    mean = f"mean of {runs} runs, " if runs > 1 else ""
    title = f"{report.metric} by {rows} and {cols}\n({mean}red: best in its row)"
    fig = heatmap_figure(heatmap_table(report, done, rows, cols), report.metric, report.mode, title)
    return save(fig, report.out_dir / "heatmap.png")


def read_curve(job_dir: Path, tag: str) -> pd.Series | None:
    """The logged values of `tag` by training step: from the job's TensorBoard run (its record
    names it; its best/ sub-run holds only the final values) or its CSV logs."""
    record = RunRecord.find(job_dir)
    points: dict[int, float] = {}
    if record is not None and record.tensorboard:
        ea = EventAccumulator(record.tensorboard, size_guidance={"scalars": 0})
        ea.Reload()
        if tag in ea.Tags()["scalars"]:
            points = {e.step: e.value for e in ea.Scalars(tag)}
    for f in [] if points else sorted(job_dir.rglob("metrics.csv")):
        df = pd.read_csv(f)
        if tag in df:
            for step, value in df[["step", tag]].dropna().itertuples(index=False):
                points.setdefault(int(step), float(value))
    return pd.Series(points).sort_index() if points else None


def val_curves(report: Report, best: pd.DataFrame) -> Path | None:
    """val_curves.png: the report's metric during training of the `best` jobs; the monitored one
    when the report's is a test metric (logged once, at the end)."""
    tag = report.metric if report.metric and report.metric.startswith("val/") else report.monitor
    assert tag is not None  # write_plots draws nothing without a metric
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = 0
    for _, job in best.iterrows():
        curve = read_curve(report.sweep_dir / str(job["job"]), tag)
        if curve is None:
            continue
        label = " ".join(f"{p}={short_label(job[p])}" for p in report.params) or f"job {job['job']}"
        ax.plot(curve.index, curve.to_numpy(), marker=".", label=f"{label} ({job[tag]:.4f})")
        drawn += 1
    if not drawn:  # no logger in these runs
        plt.close(fig)
        return None
    ax.set(xlabel="training step", ylabel=tag)
    ax.set_title(f"{tag} during training, best {drawn} runs by {report.metric}")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save(fig, report.out_dir / "val_curves.png")
