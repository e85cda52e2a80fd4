"""The test-set figures a run logs to TensorBoard, made to be read at thumbnail size: a
normalized confusion matrix with counts, and predicted-vs-true with residuals."""

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from litlab.data_spec import Task

MAX_CLASSES = 20  # more classes than this: the most-confused ones only


def _figure(width: float, height: float) -> Figure:
    # A bare Figure, not pyplot's: TensorBoard renders it with its own Agg canvas, and no
    # display backend or global figure list is involved.
    return Figure(figsize=(width, height), layout="constrained")


def most_confused(cm: np.ndarray, k: int) -> np.ndarray:
    """The `k` classes with the most errors, as true or as predicted class, in class order."""
    errors = cm.sum(0) + cm.sum(1) - 2 * np.diag(cm)
    return np.sort(np.argsort(-errors, kind="stable")[:k])


def confusion_figure(probs: np.ndarray, targets: np.ndarray, names: list[str] | None) -> Figure:
    """Rows: true class, normalized to 1; the count in each cell; accuracy in the title.
    probs: (N, C) class probabilities; targets: (N,) class ids."""
    num_classes = probs.shape[1]
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (targets.astype(np.int64), probs.argmax(1)), 1)
    accuracy = np.trace(cm) / max(cm.sum(), 1)
    shown = most_confused(cm, MAX_CLASSES) if num_classes > MAX_CLASSES else np.arange(num_classes)
    cm = cm[np.ix_(shown, shown)]
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    labels = [str(names[i]) if names else str(i) for i in shown]
    size = 1.4 + 0.26 * len(shown)  # small in inches, so that TensorBoard's thumbnail keeps the text legible
    fig = _figure(size + 0.9, size)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.8).set_label("share of the true class", fontsize=8)
    for (i, j), count in np.ndenumerate(cm):
        if count:
            ax.text(
                j, i, str(count), ha="center", va="center", fontsize=9, color="white" if share[i, j] > 0.5 else "black"
            )
    long_labels = max(len(label) for label in labels) > 4
    ax.set_xticks(range(len(shown)), labels, rotation=90 if long_labels else 0, fontsize=8)
    ax.set_yticks(range(len(shown)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    subset = f", {len(shown)} most-confused of {num_classes} classes" if len(shown) < num_classes else ""
    ax.set_title(f"test accuracy {accuracy:.3f}{subset}", fontsize=9)
    return fig


def regression_figure(preds: np.ndarray, targets: np.ndarray, target_name: str) -> Figure:
    """Predicted vs true (R² in the title) and the residuals against the prediction."""
    residuals = preds - targets
    r2 = 1 - (residuals**2).sum() / max(((targets - targets.mean()) ** 2).sum(), 1e-12)
    fig = _figure(9, 4)
    left, right = fig.subplots(1, 2)
    draw_pred_vs_true(left, right, preds, targets, target_name, f"test: R² = {r2:.3f}")
    return fig


def draw_pred_vs_true(left: Axes, right: Axes, preds: np.ndarray, targets: np.ndarray, target_name: str,
                      title: str) -> None:  # fmt: skip
    """Predicted against true on `left` (the diagonal y = x dashed), the residuals against the
    prediction on `right`: the two panels of a regression's picture, in training's and in evaluate.py's."""
    left.scatter(targets, preds, s=8, alpha=0.6)
    lo, hi = float(min(targets.min(), preds.min())), float(max(targets.max(), preds.max()))
    left.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    left.set(xlabel=f"true {target_name}", ylabel=f"predicted {target_name}", title=title)
    left.legend(loc="upper left")
    right.scatter(preds, preds - targets, s=8, alpha=0.6)
    right.axhline(0, color="k", ls="--", lw=1)
    right.set(xlabel=f"predicted {target_name}", ylabel="predicted − true", title="residuals")


def mistakes_figure(mistakes: list[tuple[np.ndarray, int, int, float]], names: list[str] | None) -> Figure:
    """Misclassified test images, each titled `true → predicted (p)`. mistakes: (image (C, H, W)
    as the model saw it, true class, predicted class, its probability)."""
    cols = min(len(mistakes), 8)
    rows = -(-len(mistakes) // cols)
    fig = _figure(1.05 * cols, 1.3 * rows)
    label = (lambda c: str(names[c])) if names else str
    for k, (image, true, pred, p) in enumerate(mistakes):
        ax = fig.add_subplot(rows, cols, k + 1)
        shown = (image - image.min()) / max(float(image.max() - image.min()), 1e-12)  # scaled back to 0..1
        ax.imshow(shown[0] if shown.shape[0] == 1 else shown.transpose(1, 2, 0), cmap="gray")
        ax.set_title(f"{label(true)} → {label(pred)} ({p:.2f})", fontsize=7)
        ax.axis("off")
    return fig


def worst_rows_markdown(
    probs_or_values: np.ndarray, targets: np.ndarray, task: Task, names: Sequence[str] | None, k: int = 10
) -> str:
    """The `k` test rows predicted worst, as a markdown table: for classes (probabilities (N, C)) the
    lowest probability of the true class, for regression (values (N,)) the largest error. Rows are
    numbered as in the test split."""
    if task.is_classification:
        p_true = probs_or_values[np.arange(len(targets)), targets.astype(np.int64)]
        worst = np.argsort(p_true, kind="stable")[:k]
        label = (lambda c: str(names[c])) if names else str
        lines = ["| test row | true | predicted | p(true) |", "|---|---|---|---|"]
        lines += [
            f"| {i} | {label(int(targets[i]))} | {label(int(probs_or_values[i].argmax()))} | {p_true[i]:.3f} |"
            for i in worst
        ]
    else:
        error = probs_or_values - targets
        worst = np.argsort(-np.abs(error), kind="stable")[:k]
        lines = ["| test row | true | predicted | error |", "|---|---|---|---|"]
        lines += [f"| {i} | {targets[i]:.4g} | {probs_or_values[i]:.4g} | {error[i]:+.4g} |" for i in worst]
    return "\n".join(lines)
