"""evaluate.py's report of a scored split (litlab.evaluation.scored_split): `report.md`'s
sections, its PNG figures, `per_class.csv` and `top_losses.csv`, and its numbers."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from litlab.data_spec import InputKind, Task
from litlab.evaluation import bootstrap
from litlab.evaluation.scores import RegressionNumbers

if TYPE_CHECKING:  # ScoredSplit.report() builds its report here
    from litlab.evaluation.scored_split import ScoredSplit

MARKDOWN_FEATURES = 8  # feature columns in report.md's top-loss table; top_losses.csv has them all


@dataclass
class Report:
    """A report's parts: markdown lines, figures and tables by file name, scalars by name."""

    lines: list[str] = field(default_factory=list)
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)

    def section(self, title: str, *lines: str) -> None:
        self.lines += ["", f"## {title}", "", *lines]

    def figure(self, name: str, figure: Figure, caption: str) -> None:
        self.figures[name] = figure
        self.lines += ([] if self.lines and self.lines[-1] == "" else [""]) + [f"![{caption}]({name}.png)"]


def cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.4f}" if abs(float(value)) < 1e4 else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def markdown_table(frame: pd.DataFrame) -> list[str]:
    """`frame` as markdown lines, floats to 4 decimals."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]


def top_losses_section(report: Report, e: "ScoredSplit") -> None:
    frame = e.top_losses()
    report.tables["top_losses.csv"] = frame
    what = "lowest probability of the true class" if e.spec.task.is_classification else "largest absolute error"
    report.section(
        f"Top losses: the {len(frame)} worst examples",
        f"Ranked by {what}; `row` is the example's row in the source data (as in `{e.split}_predictions.csv`).",
    )
    images = e.top_losses_figure()
    if images is not None:
        report.figure("top_losses", images, "top losses: true → predicted (its probability)")
    features = [] if e.worst_features is None else list(e.worst_features.columns)
    columns = [*frame.columns[: len(frame.columns) - len(features)], *features[:MARKDOWN_FEATURES]]
    report.lines += ["", *markdown_table(frame[columns])]
    if len(features) > MARKDOWN_FEATURES:
        report.lines += ["", "The first features only; `top_losses.csv` has every one."]


def calibration_section(report: Report, e: "ScoredSplit") -> None:
    c, s = e.classification().calibration, e.scaling
    report.section(
        "Calibration",
        f"Expected calibration error (ECE): **{c.ece:.4f}**; mean negative log-likelihood: {c.nll:.4f}. ECE is the "
        "mean over the 15 bins of the top-class probability of |accuracy − confidence|, weighted by the share of "
        "examples in the bin (torchmetrics' CalibrationError, L1). Points on the diagonal are calibrated; below "
        "it the model is over-confident.",
    )
    if s is not None:
        rows = [(split, s.before[split].nll, s.after[split].nll, s.before[split].ece, s.after[split].ece)
                for split in s.before]  # fmt: skip
        table = pd.DataFrame(rows, columns=["split", "NLL before", "NLL after", "ECE before", "ECE after"])
        report.lines += [
            "",
            f"Temperature scaling: T = **{s.temperature:.4f}**, fitted on the val split ({s.fitted_on} rows) to "
            "minimise its NLL; the logits are divided by T, the predictions (argmax) do not change. The val "
            f"split's numbers are those it was fitted on; the {e.split} split's are held out.",
            "",
            *markdown_table(table),
            "",
            f"The calibrated checkpoint: `{s.checkpoint}` (`litlab predict ckpt_path=...` uses its T).",
        ]
    report.figure("reliability", e.reliability_figure(), "reliability diagram")
    report.lines += ["", *markdown_table(c.reliability)]


def summary_table(e: "ScoredSplit", rows: list[tuple[str, str, float]]) -> list[str]:
    """The summary's (label, scalar name, value) rows with each bootstrap interval beside its metric."""
    table = pd.DataFrame([(label, value, e.interval_text(name).strip(" ()")) for label, name, value in rows],
                         columns=["metric", "value", "bootstrap interval"])  # fmt: skip
    return [*markdown_table(table), "", BOOTSTRAP_NOTE.format(rows=len(e.rows))]


BOOTSTRAP_NOTE = (
    f"The intervals: the metric over {bootstrap.RESAMPLES} resamples of the {{rows}} rows (drawn with replacement, "
    f"seed {bootstrap.SEED}), their 2.5th to 97.5th percentiles. A run that differs by less than that may not "
    "differ at all: compare two evaluations of the same split with `litlab report --compare EVAL_DIR_A EVAL_DIR_B`."
)


def classification_sections(report: Report, e: "ScoredSplit") -> None:
    n = e.classification()
    summary = [("accuracy", "acc", n.accuracy), ("macro F1", "f1_macro", n.f1_macro),
               ("weighted F1", "f1_weighted", n.f1_weighted)]  # fmt: skip
    if n.curves is not None:
        summary += [("ROC AUC", "auroc", n.curves.auroc)]
        summary += [("average precision", "average_precision", n.curves.average_precision)]
    summary += [("ECE (15 bins)", "ece", n.calibration.ece), ("NLL", "nll", n.calibration.nll)]
    report.section("Summary", *summary_table(e, summary))
    report.tables["per_class.csv"] = n.per_class
    report.section("Per class (per_class.csv)", *markdown_table(n.per_class))
    pairs = n.confused_pairs
    listed = markdown_table(pairs) if len(pairs) else ["No example was misclassified."]
    report.section("Most-confused pairs (true → predicted)", *listed)
    report.section("Confusion matrix")
    report.figure("confusion_matrix", e.confusion_figure(), "confusion")
    curves = e.curves_figure()
    if curves is not None:
        report.section("ROC and precision-recall", f"Positive class: `{e.names[1]}` (class 1).")
        report.figure("roc_pr", curves, "ROC and PR curves")
    calibration_section(report, e)


def regression_sections(report: Report, e: "ScoredSplit") -> None:
    n = e.scores
    assert isinstance(n, RegressionNumbers)
    report.section("Summary", *summary_table(e, [("R²", "r2", n.r2), ("MAE", "mae", n.mae), ("RMSE", "rmse", n.rmse)]))
    report.section("Predicted vs true, residuals")
    report.figure("pred_vs_true", e.regression_figure(), "predicted vs true and residuals")


SECTIONS: dict[Task, Callable[[Report, "ScoredSplit"], None]] = {
    Task.MULTICLASS: classification_sections,
    Task.BINARY: classification_sections,
    Task.REGRESSION: regression_sections,
}


def build(e: "ScoredSplit") -> Report:
    """The whole report of `e`: its page, figures, tables and scalars."""
    report = Report()
    kind = f"{len(e.names)} classes" if e.spec.task.is_classification else f"target `{e.spec.target_name}`"
    inputs = "images" if e.spec.kind is InputKind.IMAGE else "table rows"
    report.lines += [
        "# Evaluation report",
        "",
        f"Checkpoint `{e.ckpt_path}`; split **{e.split}** ({len(e.rows)} {inputs}); task {e.spec.task}, {kind}.",
    ]
    SECTIONS[e.spec.task](report, e)
    top_losses_section(report, e)
    report.scalars = e.scalars
    return report
