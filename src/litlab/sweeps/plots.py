"""The sweep report's PNG plots: the metric against each swept parameter, a heatmap over two
swept parameters, and the validation curves of the best runs from their TensorBoard or CSV logs."""

import json
from pathlib import Path
from typing import Protocol

import matplotlib
import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from litlab import files


class Report(Protocol):
    """What the plots read of a sweep report (litlab.sweeps.report.SweepReport): no import of it here."""

    sweep_dir: Path
    jobs: pd.DataFrame  # one row per job: status, swept parameters, final metrics
    params: list[str]
    monitor: str | None
    mode: str

    @property
    def group_params(self) -> list[str]: ...

    @property
    def shown_metrics(self) -> list[str]: ...

    def in_sweep_order(self) -> pd.DataFrame: ...


def write_plots(report: Report, top: int = 5) -> list[Path]:
    matplotlib.use("Agg")  # PNG files only, no display needed
    done = report.jobs[report.jobs.status == "completed"]
    if report.monitor is None or done.empty:
        return []
    paths = [metric_vs_param(report, done, p) for p in report.params]
    if len(report.group_params) == 2:
        paths.append(heatmap(report, done, *report.group_params))
    curves = val_curves(report, done.head(top))
    return [p for p in [*paths, curves] if p is not None]


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


def metric_vs_param(report: Report, done: pd.DataFrame, param: str) -> Path:
    assert report.monitor is not None  # write_plots draws nothing without one
    fig, ax = plt.subplots(figsize=(6, 4))
    x, cats, log = _axis_values(done[param], report.in_sweep_order()[param])
    for k, (metric, marker) in enumerate(zip(report.shown_metrics, ("o", "s"), strict=False)):
        stats = pd.Series(done[metric].to_numpy(), index=x).groupby(level=0).agg(["mean", "std"])  # over repeats
        if cats is None:  # numbers: the jobs, and the means joined as a trend
            ax.scatter(x, done[metric], marker=marker, alpha=0.4, label=metric)
            ax.plot(stats.index, stats["mean"].to_numpy(), alpha=0.8)
        else:  # categories: mean ± std as points, side by side per metric, nothing joined
            ax.errorbar(stats.index + 0.1 * k, stats["mean"], yerr=stats["std"].fillna(0), fmt=marker, capsize=4,
                        label=metric)  # fmt: skip
    if cats is not None:
        ax.set_xticks(range(len(cats)), [short_label(c) for c in cats])
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(param)
    ax.set_ylabel(report.monitor.split("/", 1)[1])
    ax.set_title(f"{report.monitor} against {param}", fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3)
    path = report.sweep_dir / f"metric_vs_{param}.png"
    fig.tight_layout()
    files.write_with(path, lambda p: fig.savefig(p, dpi=110, format="png"))  # the temporary name has no .png
    plt.close(fig)
    return path


def color_range(values: np.ndarray, mode: str) -> tuple[float | None, float | None]:
    """(vmin, vmax) spanning the best three quarters of the cells: a poor corner (a too-high
    learning rate) does not squeeze the top values into one colour."""
    if not np.isfinite(values).any():
        return None, None
    low, high = np.nanpercentile(values, [25, 100] if mode == "max" else [0, 75])
    return float(low), float(high)


def annotate_cells(ax: plt.Axes, im: matplotlib.image.AxesImage, values: np.ndarray, mode: str) -> None:
    """Each cell's value (or "failed"), and a red outline on the best value of each row: where the optimum sits."""
    for (i, j), v in np.ndenumerate(values):
        shade = float(np.asarray(im.norm(v)))
        bright = not np.isnan(v) and (shade < 0.4 if mode == "min" else shade > 0.6)
        text = "failed" if np.isnan(v) else f"{v:.3f}"
        ax.text(j, i, text, ha="center", va="center", color="black" if bright else "white", fontsize=8)
    for i, row in enumerate(values):
        if not np.isnan(row).all():
            j = int(np.nanargmax(row) if mode == "max" else np.nanargmin(row))
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))


def heatmap(report: Report, done: pd.DataFrame, rows: str, cols: str) -> Path:
    """Mean of the monitored metric for each pair of values; blank where every job failed."""
    table = done.pivot_table(index=rows, columns=cols, values=report.monitor, aggfunc="mean", sort=False)
    in_order = report.in_sweep_order()
    table = table.reindex(index=list(dict.fromkeys(in_order[rows])), columns=list(dict.fromkeys(in_order[cols])))
    if pd.api.types.is_numeric_dtype(table.index):
        table = table.sort_index()
    if pd.api.types.is_numeric_dtype(table.columns):
        table = table.sort_index(axis=1)
    values = table.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.1 * len(table.columns) + 2.5, 0.7 * len(table.index) + 2))
    cmap = "viridis" if report.mode == "max" else "viridis_r"  # bright = good either way
    low, high = color_range(values, report.mode)
    im = ax.imshow(values, cmap=cmap, aspect="auto", vmin=low, vmax=high)
    ax.set_xticks(range(len(table.columns)), [short_label(c) for c in table.columns])
    ax.set_yticks(range(len(table.index)), [short_label(r) for r in table.index])
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    annotate_cells(ax, im, values, report.mode)
    fig.colorbar(im, ax=ax, label=report.monitor, extend="min" if report.mode == "max" else "max")
    runs = int(done.groupby([rows, cols]).size().max())
    mean = f"mean of {runs} runs, " if runs > 1 else ""
    ax.set_title(f"{report.monitor} by {rows} and {cols}\n({mean}red: best in its row)", fontsize=9)
    path = report.sweep_dir / "heatmap.png"
    fig.tight_layout()
    files.write_with(path, lambda p: fig.savefig(p, dpi=110, format="png"))  # the temporary name has no .png
    plt.close(fig)
    return path


def read_curve(job_dir: Path, tag: str) -> pd.Series | None:
    """The logged values of `tag` by training step: from the job's TensorBoard run (metrics.json
    names it; its best/ sub-run holds only the final values) or its CSV logs."""
    record = json.loads((job_dir / "metrics.json").read_text()) if (job_dir / "metrics.json").exists() else {}
    points: dict[int, float] = {}
    if record.get("tensorboard"):
        ea = EventAccumulator(record["tensorboard"], size_guidance={"scalars": 0})
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
    assert report.monitor is not None  # write_plots draws nothing without one
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = 0
    for _, job in best.iterrows():
        curve = read_curve(report.sweep_dir / str(job["job"]), report.monitor)
        if curve is None:
            continue
        label = " ".join(f"{p}={short_label(job[p])}" for p in report.params) or f"job {job['job']}"
        ax.plot(curve.index, curve.to_numpy(), marker=".", label=f"{label} ({job[report.monitor]:.4f})")
        drawn += 1
    if not drawn:  # no logger in these runs
        plt.close(fig)
        return None
    ax.set_xlabel("training step")
    ax.set_ylabel(report.monitor)
    ax.set_title(f"{report.monitor} during training, best {drawn} runs")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    path = report.sweep_dir / "val_curves.png"
    fig.tight_layout()
    files.write_with(path, lambda p: fig.savefig(p, dpi=110, format="png"))  # the temporary name has no .png
    plt.close(fig)
    return path
