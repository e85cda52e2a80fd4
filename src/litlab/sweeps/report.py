"""The report of a sweep dir: every job's overrides, metrics, status and wall time, the jobs
grouped over seeds and folds (mean ± std, n, 95% t interval) with a verdict on which setting is
better (litlab.sweeps.compare), written as CSV, markdown and PNG plots.

Used by `litlab report` (litlab.run.report_command) and, after every multirun, by
litlab.sweeps.sweep_end.SweepEnd. The rows come from litlab.sweeps.jobs.
"""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from rich.console import Console
from rich.markup import escape

from litlab import files
from litlab.errors import UserError
from litlab.files.run_record import FINISHED
from litlab.sweeps.compare import LEVEL, Verdict, t_interval, verdict
from litlab.sweeps.jobs import job_rows, natural
from litlab.sweeps.report_tables import Layout, best_mask, fmt, md_table, rich_tables, short_headers

# Jobs that differ only in these are repeats of one configuration: grouped into mean ± std.
REPLICATE_KEYS = ("seed", "data.fold")


def _numeric(s: pd.Series) -> pd.Series:
    converted = pd.to_numeric(s, errors="coerce")
    return converted if converted.notna().sum() == s.notna().sum() else s


def metric_directions(metrics: list[str], monitor: str | None, monitor_mode: str) -> dict[str, str | None]:
    """'min' or 'max' for each metric, as litlab.models.metrics declares it; the monitored one as
    the jobs ran with it; None for a metric litlab does not declare (no best is marked)."""
    from litlab.models.metrics import direction  # importing litlab.models brings Lightning: only for a report

    def declared(metric: str) -> str | None:
        try:
            return direction(metric)
        except UserError:
            return None

    out = {m: declared(m) for m in metrics}
    if monitor in out:
        out[monitor] = monitor_mode
    return out


def chosen_metric(metric: str | None, directions: dict[str, str | None]) -> tuple[str | None, str]:
    """The metric the report sorts and groups by, and its direction: a UserError if the jobs did not record it."""
    if metric is None:  # no job completed
        return None, "max"
    if metric not in directions:
        available = ", ".join(directions) or "none (no job recorded a metric)"
        raise UserError(f"metric {metric!r} is not one the jobs recorded; available: {available}")
    mode = directions[metric]
    if mode is None:
        raise UserError(f"metric {metric!r}: litlab does not declare whether it is better low or high")
    return metric, mode


IMPORTANCE_NOTE = (
    "Each searched parameter's share of the variance of the objective over the completed trials "
    "(Optuna's fANOVA, best.yaml's `importances`): which settings mattered, not which value is better."
)


def searched_importances(sweep_dir: Path) -> dict[str, float] | None:
    """An Optuna search's parameter importances, from its best.yaml (none for a grid sweep)."""
    try:
        best = yaml.safe_load((sweep_dir / "best.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):  # none (a grid sweep), or not litlab's
        return None
    shares = best.get("importances") if isinstance(best, dict) else None
    return shares if isinstance(shares, dict) else None


def verdict_note(found: Verdict) -> str:
    """How the verdict was reached, under it."""
    return (
        f"Groups ranked by their mean {found.metric}; ± is the half-width of the {LEVEL:.0%} t interval over the "
        f"replicates; each group compared with the best by a {found.test} on the seeds/folds both ran, the "
        f"p-values Holm-adjusted for {len(found.comparisons)} comparison(s). See docs/sweeps.md, comparing settings."
    )


@dataclass
class SweepReport:
    """All jobs of one sweep dir. `jobs` has one row per job: `job`, `status`, one column per
    swept parameter, the final `val/*` and `test/*` metrics, `wall_time_s`, `error`; sorted by
    `metric` (the monitored metric unless another is asked for), best first."""

    sweep_dir: Path
    jobs: pd.DataFrame
    params: list[str]  # overrides whose value differs between jobs
    fixed: dict[str, str]  # overrides that all jobs share
    monitor: str | None  # the metric the jobs monitored (checkpointing, early stopping)
    metric: str | None  # the metric the report sorts, groups and plots by
    mode: str  # the direction of `metric`: 'min' or 'max'
    directions: dict[str, str | None]  # of every metric column
    out_dir: Path  # the sweep dir; for another metric than the monitored one, report-<metric>/ in it

    @classmethod
    def load(cls, sweep_dir: Path, metric: str | None = None) -> "SweepReport":
        """The report of `sweep_dir`, sorted by `metric` (default: the monitored metric)."""
        sweep_dir = Path(sweep_dir)
        records = job_rows(sweep_dir)
        keys = list(dict.fromkeys(k for r in records for k in r["params"]))
        values = {k: {r["params"].get(k) for r in records} for k in keys}
        params = [k for k in keys if len(values[k]) > 1]
        fixed = {k: next(iter(v)) for k, v in values.items() if len(v) == 1}
        done = [r for r in records if r["status"] == "completed"]
        monitor = done[0]["monitor"] if done else None
        rows = [
            {"job": r["job"], **{k: r["params"].get(k) for k in params}, **r["metrics"], "status": r["status"],
             "wall_time_s": r["wall_time_s"], "error": r["error"]}
            for r in records
        ]  # fmt: skip
        jobs = pd.DataFrame(rows)
        for k in params:
            jobs[k] = _numeric(jobs[k])
        metrics = [c for c in jobs.columns if c.startswith(("val/", "test/"))]
        directions = metric_directions(metrics, monitor, done[0]["mode"] if done else "max")
        metric, mode = chosen_metric(metric or monitor, directions)
        if metric is not None:
            jobs = jobs.sort_values(metric, ascending=mode == "min", na_position="last", kind="stable")
        # the report by another metric goes beside the sweep's own, never over it
        out_dir = sweep_dir if metric in (None, monitor) else sweep_dir / f"report-{metric.replace('/', '_')}"
        return cls(sweep_dir, jobs.reset_index(drop=True), params, fixed, monitor, metric, mode, directions, out_dir)

    def in_sweep_order(self) -> pd.DataFrame:
        """The jobs by job number, as the sweep launched them (`jobs` is sorted by the metric)."""
        return self.jobs.sort_values("job", key=lambda s: s.map(lambda j: natural(str(j))), kind="stable")

    @property
    def metric_columns(self) -> list[str]:
        """Every final metric the jobs recorded: `metric` first, then the monitored one, the other
        val metrics and the test metrics, each in the order the jobs logged them."""
        found = list(self.directions)
        first = [m for m in dict.fromkeys((self.metric, self.monitor)) if m in found]
        rest = [m for m in found if m not in first]
        return first + sorted(rest, key=lambda m: not m.startswith("val/"))  # stable: logged order kept

    @property
    def group_params(self) -> list[str]:
        """The swept parameters that are not repeats (seed, fold): a group is one value of each."""
        return [p for p in self.params if p not in REPLICATE_KEYS]

    def failed_jobs(self) -> list[tuple[str, str]]:
        """Jobs that did not finish; a pruned Optuna trial did (the search stopped it)."""
        bad = self.jobs[~self.jobs.status.isin(FINISHED)]
        return [(job, err or status) for job, status, err in zip(bad.job, bad.status, bad.error, strict=True)]

    def grouped(self) -> pd.DataFrame | None:
        """Completed jobs that differ only in seed or data.fold, as one row each: n, and the mean,
        (sample, ddof=1) std and 95% t interval (`ci_low`, `ci_high`) of every metric. None if no
        seed or fold was swept."""
        if not any(p in REPLICATE_KEYS for p in self.params):
            return None
        done = self.jobs[self.jobs.status == "completed"]
        cols = [*self.metric_columns, "wall_time_s"]
        if self.group_params:
            groups = done.groupby(self.group_params, dropna=False, sort=False)
        else:
            groups = done.assign(all="all").groupby("all")
        g = groups[cols]
        out = g.agg(["mean", "std"])
        out.columns = [f"{metric} {stat}" for metric, stat in out.columns]
        for m in self.metric_columns:
            intervals = groups[m].apply(lambda s: t_interval(s.dropna().tolist()) if s.notna().any() else None)
            out[f"{m} ci_low"] = intervals.map(lambda i: i.low if i else None)
            out[f"{m} ci_high"] = intervals.map(lambda i: i.high if i else None)
        out.insert(0, "n", g.size())
        out = out.reset_index()
        if self.metric is not None:
            out = out.sort_values(f"{self.metric} mean", ascending=self.mode == "min", kind="stable")
        return out.drop(columns=["all"], errors="ignore").reset_index(drop=True)

    def verdict(self) -> Verdict | None:
        """Which group (setting of the swept parameters) is best on `metric`, with each other group
        compared with it on the seeds or folds they share; None without two groups or replicates."""
        replicated = [p for p in REPLICATE_KEYS if p in self.params]
        done = self.jobs[self.jobs.status == "completed"].dropna(subset=[self.metric] if self.metric else [])
        if self.metric is None or not replicated or not self.group_params or done.empty:
            return None
        replicates: dict[str, dict[object, float]] = {}
        for _, row in done.iterrows():
            group = " ".join(f"{p}={fmt(row[p])}" for p in self.group_params)
            replicates.setdefault(group, {})[tuple(row[p] for p in replicated)] = float(row[self.metric])
        if len(replicates) < 2:
            return None
        folds = done["data.fold"].nunique() if "data.fold" in replicated else 0
        return verdict(replicates, self.metric, self.mode, folds)

    # --- output ------------------------------------------------------------------------------
    def write(self, show: bool = True) -> list[Path]:
        """report.csv, report_grouped.csv (with seeds/folds), the PNG plots and report.md, in `out_dir`."""
        from litlab.sweeps.plots import write_plots  # matplotlib only when writing

        self.out_dir.mkdir(exist_ok=True)
        out = [self.out_dir / "report.csv"]
        files.write_with(out[0], lambda path: self.jobs.to_csv(path, index=False))
        grouped = self.grouped()
        if grouped is not None:
            out.append(self.out_dir / "report_grouped.csv")
            files.write_with(out[-1], lambda path: grouped.to_csv(path, index=False))
        plots = write_plots(self)
        md = self.out_dir / "report.md"
        files.write_text(md, self.markdown(grouped, plots))
        if show:
            self.print(grouped)
        return [*out, md, *plots]

    def job_table(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The job table's cells (formatted) and where each metric's best value is (completed jobs)."""
        table = self.jobs[["job", *self.params, *self.metric_columns, "status", "wall_time_s"]]
        best = best_mask(table, self.directions, self.jobs.status == "completed")
        return table.map(fmt), best

    def grouped_table(self, grouped: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The grouped table's cells, each metric as mean ± std, and where each metric's best mean is."""
        cells = grouped[[*self.group_params, "n"]].map(fmt)
        means = pd.DataFrame({m: grouped[f"{m} mean"] for m in self.metric_columns})
        for m in self.metric_columns:
            stds = grouped[f"{m} std"].fillna(0)  # the std of n=1 is NaN
            cells[m] = [f"{a:.4f} ± {b:.4f}" for a, b in zip(means[m], stds, strict=True)]
            if m == self.metric:  # its interval beside it: n=1 has none
                bounds = zip(grouped[f"{m} ci_low"], grouped[f"{m} ci_high"], strict=True)
                cells[f"{m} {LEVEL:.0%} CI"] = ["" if pd.isna(lo) else f"{lo:.4f} to {hi:.4f}" for lo, hi in bounds]
        best = best_mask(means.reindex(columns=cells.columns), self.directions, means.notna().any(axis=1))
        return cells, best

    def markdown(self, grouped: pd.DataFrame | None, plots: list[Path]) -> str:
        """report.md: the summary, both tables with every value in full, the failures, the plots."""
        n, failed = len(self.jobs), len(self.failed_jobs())
        interrupted, pruned = (int((self.jobs.status == s).sum()) for s in ("interrupted", "pruned"))
        pruned_text = f" {pruned} pruned," if pruned else ""  # an Optuna search with a pruner
        summary = (
            f"{n} jobs: {n - failed - pruned} completed,{pruned_text} {interrupted} interrupted, "
            f"{failed - interrupted} failed or unfinished."
        )
        lines = [f"# Sweep report: {self.sweep_dir}", ""]
        if (found := self.verdict()) is not None:
            lines += [f"**{found.sentence()}.**", "", verdict_note(found), ""]
        lines.append(summary)
        if self.metric:
            lines.append(f"Sorted by {self.metric} ({self.mode}); in bold, the best value of each metric.")
        if self.fixed:
            lines.append("Shared overrides: " + " ".join(f"`{k}={v}`" for k, v in self.fixed.items()))
        lines += ["", "## Jobs", "", md_table(*self.job_table())]
        if grouped is not None:
            lines += ["", "## Grouped over seed / fold (mean ± std, n)", "", md_table(*self.grouped_table(grouped))]
        if failed:
            lines += ["", "## Not completed", ""] + [f"- job {job}: {err}" for job, err in self.failed_jobs()]
        if shares := searched_importances(self.sweep_dir):
            lines += ["", "## Parameter importances", "", IMPORTANCE_NOTE, ""]
            lines += [f"- `{name}`: {share:.2f}" for name, share in shares.items()]
        if plots:
            lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
        return "\n".join(lines) + "\n"

    def print(self, grouped: pd.DataFrame | None = None, console: Console | None = None) -> None:
        """The tables on the terminal, split into several where the metrics do not fit its width."""
        console = console or Console()
        numbers = {c for c in self.jobs.columns if c != "job" and pd.api.types.is_numeric_dtype(self.jobs[c])}
        right = numbers | set(self.metric_columns) | {"n"}
        sort = f" — sorted by {self.metric}" if self.metric else ""  # none when no job completed
        parts = [(self.job_table(), ["job"], f"{self.sweep_dir}{sort}")]
        if grouped is not None:
            parts.append(
                (self.grouped_table(grouped), [*self.group_params, "n"], "grouped over seed / fold (mean ± std)")
            )
        for (cells, best), keys, title in parts:
            layout = Layout(short_headers(list(cells.columns), self.params), keys, right)
            for table in rich_tables(cells, best, layout, title, console.width):
                console.print(table)
        for job, err in self.failed_jobs():
            console.print(f"[red]job {job}:[/red] {escape(err)}")  # an error may quote [brackets]
        if (found := self.verdict()) is not None:
            console.print(f"[bold]{escape(found.sentence())}[/bold]")  # a value may be a [list]
            console.print(escape(verdict_note(found)))
