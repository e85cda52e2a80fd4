"""evaluate.py's report: `report/report.md` with its PNG figures, `per_class.csv` and
`top_losses.csv`, made from one split's outputs and scores (litlab.evaluation.scores)."""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from litlab.data_spec import DataSpec, InputKind, Task
from litlab.evaluation import figures as figs
from litlab.evaluation.scores import ClassificationNumbers, RegressionNumbers, TemperatureScaling
from litlab.evaluation.split_outputs import SplitOutputs
from litlab.review.figures import mistakes_figure

MARKDOWN_FEATURES = 8  # feature columns in report.md's top-loss table; top_losses.csv has them all


@dataclass(frozen=True)
class Evaluated:
    """What a report is made of: one split's outputs and scores, and where they came from."""

    split: str
    ckpt_path: str
    spec: DataSpec
    outputs: SplitOutputs
    numbers: ClassificationNumbers | RegressionNumbers
    rows: np.ndarray  # (N,) each example's row in the source data
    worst_features: pd.DataFrame | None  # tables: the top-loss examples' feature values, as in training's input
    scaling: TemperatureScaling | None = None

    @property
    def names(self) -> list[str]:
        return list(self.spec.class_names or ())


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


def top_losses_frame(e: Evaluated) -> pd.DataFrame:
    """The highest-loss examples, highest first: their source row, truth, prediction and loss,
    then for tables their feature values."""
    o, worst = e.outputs, e.outputs.worst.numpy()
    frame = pd.DataFrame({"row": e.rows[worst]})
    if e.spec.task.is_classification:
        probs, targets = o.outputs.numpy(), o.targets.numpy()
        predicted = probs[worst].argmax(1)
        frame["true"] = [e.names[t] for t in targets[worst]]
        frame["predicted"] = [e.names[p] for p in predicted]
        frame["p(predicted)"] = probs[worst, predicted]
        frame["p(true)"] = probs[worst, targets[worst]]
        frame["loss (-log p(true))"] = o.losses.numpy()[worst]
    else:
        frame["target"] = o.targets.numpy()[worst]
        frame["prediction"] = o.outputs.numpy()[worst]
        frame["error"] = frame["prediction"] - frame["target"]
    if e.worst_features is not None:
        frame = pd.concat([frame, e.worst_features.reset_index(drop=True)], axis=1)
    return frame


def top_losses_section(report: Report, e: Evaluated) -> None:
    frame = top_losses_frame(e)
    report.tables["top_losses.csv"] = frame
    what = "lowest probability of the true class" if e.spec.task.is_classification else "largest absolute error"
    report.section(
        f"Top losses: the {len(frame)} worst examples",
        f"Ranked by {what}; `row` is the example's row in the source data (as in `{e.split}_predictions.csv`).",
    )
    images = e.outputs.worst_inputs
    if images is not None and e.spec.task.is_classification:
        probs, targets = e.outputs.outputs, e.outputs.targets
        shown = [
            (image.numpy(), int(targets[i]), int(probs[i].argmax()), float(probs[i].max()))
            for image, i in zip(images, e.outputs.worst.tolist(), strict=True)
        ]
        report.figure("top_losses", mistakes_figure(shown, e.names), "top losses: true → predicted (its probability)")
    extra = frame.columns[: len(frame.columns) - (0 if e.worst_features is None else len(e.worst_features.columns))]
    columns = [*extra, *([] if e.worst_features is None else e.worst_features.columns[:MARKDOWN_FEATURES])]
    more = e.worst_features is not None and len(e.worst_features.columns) > MARKDOWN_FEATURES
    report.lines += ["", *markdown_table(frame[columns])]
    if more:
        report.lines += ["", "The first features only; `top_losses.csv` has every one."]


def calibration_section(report: Report, e: Evaluated) -> None:
    assert isinstance(e.numbers, ClassificationNumbers)
    c, s = e.numbers.calibration, e.scaling
    series = {"as trained" if s else e.split: (c.reliability, c.ece)}
    report.section(
        "Calibration",
        f"Expected calibration error (ECE): **{c.ece:.4f}**; mean negative log-likelihood: {c.nll:.4f}. ECE is the "
        "mean over the 15 bins of the top-class probability of |accuracy − confidence|, weighted by the share of "
        "examples in the bin (torchmetrics' CalibrationError, L1). Points on the diagonal are calibrated; below "
        "it the model is over-confident.",
    )
    if s is not None:
        after = s.after[e.split]
        series[f"T = {s.temperature:.4f}"] = (after.reliability, after.ece)
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
            f"The calibrated checkpoint: `{s.checkpoint}` (`python predict.py ckpt_path=...` uses its T).",
        ]
    report.figure("reliability", figs.reliability_figure(series, e.split), "reliability diagram")
    report.lines += ["", *markdown_table(c.reliability)]


def classification_sections(report: Report, e: Evaluated) -> None:
    n = e.numbers
    assert isinstance(n, ClassificationNumbers)
    summary = [("accuracy", n.accuracy), ("macro F1", n.f1_macro), ("weighted F1", n.f1_weighted)]
    if n.curves is not None:
        summary += [("ROC AUC", n.curves.auroc), ("average precision", n.curves.average_precision)]
    summary += [("ECE (15 bins)", n.calibration.ece), ("NLL", n.calibration.nll)]
    report.section("Summary", *markdown_table(pd.DataFrame(summary, columns=["metric", "value"])))
    report.tables["per_class.csv"] = n.per_class
    report.section("Per class (per_class.csv)", *markdown_table(n.per_class))
    pairs = n.confused_pairs
    listed = markdown_table(pairs) if len(pairs) else ["No example was misclassified."]
    report.section("Most-confused pairs (true → predicted)", *listed)
    report.section("Confusion matrix")
    report.figure("confusion_matrix", figs.normalized_confusion_figure(n.confusion, e.names, e.split), "confusion")
    if n.curves is not None:
        positive = e.names[1]
        report.section("ROC and precision-recall", f"Positive class: `{positive}` (class 1).")
        report.figure("roc_pr", figs.binary_curves_figure(n.curves, positive, e.split), "ROC and PR curves")
    calibration_section(report, e)


def regression_sections(report: Report, e: Evaluated) -> None:
    n = e.numbers
    assert isinstance(n, RegressionNumbers)
    summary = pd.DataFrame([("R²", n.r2), ("MAE", n.mae), ("RMSE", n.rmse)], columns=["metric", "value"])
    report.section("Summary", *markdown_table(summary))
    values, targets = e.outputs.outputs.numpy(), e.outputs.targets.numpy()
    report.section("Predicted vs true, residuals")
    fig = figs.regression_figure(values, targets, e.spec.target_name, e.split, n.r2)
    report.figure("pred_vs_true", fig, "predicted vs true and residuals")


SECTIONS: dict[Task, Callable[[Report, Evaluated], None]] = {
    Task.MULTICLASS: classification_sections,
    Task.BINARY: classification_sections,
    Task.REGRESSION: regression_sections,
}


def build(e: Evaluated) -> Report:
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
    report.scalars = {**e.numbers.scalars(), **(e.scaling.scalars() if e.scaling else {})}
    return report
