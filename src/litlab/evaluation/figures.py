"""The figures of evaluate.py's report: the normalized confusion matrix, the reliability diagram,
ROC and precision-recall curves, predicted vs true with residuals. Each draws numbers computed
beforehand (litlab.evaluation.scores) on the axes it is given, as scikit-learn's displays do
(`ConfusionMatrixDisplay(...).plot(ax=...)`), or without axes on a bare matplotlib Figure (no
pyplot) of a size that fits, which the report saves as PNG and logs to TensorBoard."""

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from litlab.evaluation.scores import BinaryCurves
from litlab.review.figures import MAX_CLASSES, draw_pred_vs_true, most_confused


def axes_of(axes: Sequence[Axes] | None, width: float, height: float, layout: dict) -> list[Axes]:
    """`axes` as given, or those of a new bare Figure (`width` x `height` inches) laid out as
    `layout` says (Figure.subplots' arguments)."""
    if axes is not None:
        return list(axes)
    found = Figure(figsize=(width, height), layout="constrained").subplots(**layout, squeeze=False)
    return list(found.flat)


def confusion_matrix(confusion: np.ndarray, names: list[str], split: str, ax: Axes | None = None) -> Figure:
    """Each row (true class) divided by its count, so rows sum to 1; the share written in each
    non-empty cell; a colour bar over the whole 0..1. Over MAX_CLASSES classes, the most-confused."""
    num_classes = len(names)
    share = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)  # a class with no rows: a row of 0
    shown = most_confused(confusion, MAX_CLASSES) if num_classes > MAX_CLASSES else np.arange(num_classes)
    share = share[np.ix_(shown, shown)]
    size = 2.0 + 0.42 * len(shown)
    (ax,) = axes_of(None if ax is None else [ax], size + 1.0, size, {})
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    figure = figure_of(ax)
    figure.colorbar(image, ax=ax, shrink=0.8).set_label("share of the true class (each row sums to 1)", fontsize=8)
    for (i, j), value in np.ndenumerate(share):
        if confusion[shown[i], shown[j]]:
            color = "white" if value > 0.5 else "black"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    labels = [names[i] for i in shown]
    long_labels = max(len(label) for label in labels) > 4
    ax.set_xticks(range(len(shown)), labels, rotation=90 if long_labels else 0, fontsize=8)
    ax.set_yticks(range(len(shown)), labels, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true")
    subset = f", the {len(shown)} most-confused of {num_classes} classes" if len(shown) < num_classes else ""
    ax.set_title(f"{split}: confusion, normalized by true class{subset}", fontsize=9)
    return figure


def reliability(
    series: dict[str, tuple[pd.DataFrame, float]], split: str, axes: Sequence[Axes] | None = None
) -> Figure:
    """Per confidence bin, the accuracy against the mean confidence (on the diagonal: calibrated),
    each point labelled with its count; below, how many examples fall in each bin. `series`:
    label -> (scores.reliability_bins, ECE), e.g. before and after temperature scaling. `axes`:
    the diagram's and the histogram's."""
    top, bottom = axes_of(axes, 5.0, 6.0, {"nrows": 2, "height_ratios": [3, 1.3], "sharex": True})
    top.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    for k, (label, (bins, ece)) in enumerate(series.items()):
        color = f"C{k}"
        top.plot(bins["confidence"], bins["accuracy"], "o-", color=color, ms=4, label=f"{label}: ECE {ece:.4f}")
        for _, row in bins.iterrows():
            top.annotate(
                str(int(row["count"])), (row["confidence"], row["accuracy"]), fontsize=6, color=color,
                xytext=(3, -9 if k else 4), textcoords="offset points",
            )  # fmt: skip
        width = (bins["upper"] - bins["lower"]).clip(lower=0.01) / len(series)
        bottom.bar(bins["lower"] + k * width, bins["count"], width=width, align="edge", color=color, alpha=0.7)
    top.set(xlim=(0, 1.02), ylim=(0, 1.07), ylabel="accuracy in the bin")
    top.set_title(f"{split}: reliability (top-class probability, 15 bins)", fontsize=9)
    # In the histogram's empty upper left: on the diagram it would hide low-confidence bins.
    bottom.legend(*top.get_legend_handles_labels(), loc="upper left", fontsize=7)
    bottom.set(xlabel="confidence (mean top-class probability in the bin)", ylabel="examples")
    return figure_of(top)


def binary_curves(curves: BinaryCurves, positive: str, split: str, axes: Sequence[Axes] | None = None) -> Figure:
    """ROC (AUC) and precision-recall (average precision) of the positive class, side by side."""
    roc, pr = axes_of(axes, 9, 4, {"ncols": 2})
    roc.plot(curves.fpr, curves.tpr, lw=1.5)
    roc.plot([0, 1], [0, 1], "k--", lw=1)
    roc.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
    roc.set_title(f"{split}: ROC of '{positive}', AUC = {curves.auroc:.4f}", fontsize=9)
    pr.step(curves.recall, curves.precision, where="post", lw=1.5)
    pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
    pr.set_title(f"{split}: precision-recall of '{positive}', AP = {curves.average_precision:.4f}", fontsize=9)
    return figure_of(roc)


def regression(
    values: np.ndarray, targets: np.ndarray, target_name: str, split: str, r2: float,
    axes: Sequence[Axes] | None = None,
) -> Figure:  # fmt: skip
    """Predicted vs true (R² in the title), residuals against the prediction, and their histogram."""
    left, middle, right = axes_of(axes, 13, 4, {"ncols": 3})
    draw_pred_vs_true(left, middle, values, targets, target_name, f"{split}: R² = {r2:.4f}")
    right.hist(values - targets, bins=30)
    right.axvline(0, color="k", ls="--", lw=1)
    right.set(xlabel="predicted − true", ylabel="examples", title="residuals' distribution")
    return figure_of(left)


def figure_of(ax: Axes) -> Figure:
    figure = ax.get_figure(root=True)
    assert isinstance(figure, Figure)  # axes are always on one
    return figure
