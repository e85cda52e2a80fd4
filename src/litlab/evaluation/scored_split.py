"""One split of a checkpoint, scored once: the object evaluate.py builds from the split's outputs,
as fastai's `Interpretation` is built once from a learner's predictions. Its views are what the
job shows of it: the numbers (`scores`, `scalars`), the highest losses, the figures, the report
and the console's lines. Nothing is computed twice, and each view can be had on its own.

Example::

    scored = ScoredSplit.score("test", ckpt_path, spec, collect(model, loader, spec.kind, keep=16), rows)
    scored.scalars["acc"], scored.top_losses().head(), scored.confusion_figure()
    report = scored.report()  # report.md's lines, its figures, its tables
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from litlab.data_spec import DataSpec, Task
from litlab.evaluation import bootstrap, figures
from litlab.evaluation.report import Report, build
from litlab.evaluation.scores import (
    ClassificationNumbers,
    RegressionNumbers,
    TemperatureScaling,
    classification_numbers,
    regression_numbers,
)
from litlab.evaluation.split_outputs import SplitOutputs
from litlab.review.figures import mistakes_figure

# The headline numbers on the console, by their names in `scalars`.
CONSOLE = {"acc": "accuracy", "f1_macro": "macro F1", "auroc": "ROC AUC", "ece": "ECE", "r2": "R²", "mae": "MAE",
           "rmse": "RMSE"}  # fmt: skip


@dataclass(frozen=True)
class ScoredSplit:
    """A split's outputs and their scores, and where they came from."""

    split: str
    ckpt_path: str
    spec: DataSpec
    outputs: SplitOutputs
    scores: ClassificationNumbers | RegressionNumbers
    rows: np.ndarray  # (N,) each example's row in the source data
    worst_features: pd.DataFrame | None  # tables: the top-loss examples' feature values, as in training's input
    scaling: TemperatureScaling | None = None  # calibrate=true

    @classmethod
    def score(
        cls, split: str, ckpt_path: str, spec: DataSpec, outputs: SplitOutputs, rows: np.ndarray,
        worst_features: pd.DataFrame | None = None, scaling: TemperatureScaling | None = None,
    ) -> "ScoredSplit":  # fmt: skip
        """Score `outputs` (every example of `split`, in its order) as `spec`'s task is scored."""
        if spec.task is Task.REGRESSION:
            scores: ClassificationNumbers | RegressionNumbers = regression_numbers(outputs.outputs, outputs.targets)
        else:
            names, binary = list(spec.class_names or ()), spec.task is Task.BINARY
            scores = classification_numbers(outputs.outputs, outputs.targets, outputs.losses, names, binary)
        return cls(split, ckpt_path, spec, outputs, scores, rows, worst_features, scaling)

    @property
    def names(self) -> list[str]:
        return list(self.spec.class_names or ())

    @cached_property
    def intervals(self) -> dict[str, tuple[float, float]]:
        """The bootstrap 95% interval of each headline metric (accuracy and macro F1, or MAE, RMSE and
        R²) over this split's rows (litlab.evaluation.bootstrap)."""
        classification = self.spec.task.is_classification
        o = self.outputs
        predicted = o.outputs.argmax(dim=1) if classification else o.outputs  # as test_predictions.csv's
        return bootstrap.intervals(o.targets.numpy(), predicted.numpy(), classification)

    @property
    def scalars(self) -> dict[str, float]:
        """Every number of the report by name (acc, ece, r2, temperature, ...; `acc_ci_low` and
        `acc_ci_high` the bounds of acc's interval), as evaluation.json and TensorBoard give them."""
        bounds = {f"{name}_ci_{side}": value for name, (low, high) in self.intervals.items()
                  for side, value in (("low", low), ("high", high))}  # fmt: skip
        return {**self.scores.scalars(), **bounds, **(self.scaling.scalars() if self.scaling else {})}

    def console_lines(self) -> list[tuple[str, str]]:
        """The headline numbers and the temperature's effect, as `name  value` lines."""
        scalars = self.scalars
        shown = [(name, label) for name, label in CONSOLE.items() if name in scalars]
        rows = [(f"{self.split} {label}", f"{scalars[name]:.4f}{self.interval_text(name)}") for name, label in shown]
        s = self.scaling
        if s is not None:
            rows.append(("temperature", f"T = {s.temperature:.4f}, fitted on the val split ({s.fitted_on} rows)"))
            for split in s.before:  # val: the split T was fitted on; the report's split: held out
                b, a = s.before[split], s.after[split]
                rows.append((f"{split} calibrated", f"ECE {b.ece:.4f} → {a.ece:.4f}, NLL {b.nll:.4f} → {a.nll:.4f}"))
            rows.append(("calibrated", s.checkpoint))
        return rows

    def interval_text(self, name: str) -> str:
        """' (95% CI LOW to HIGH)' for a metric with a bootstrap interval, else ''."""
        if name not in self.intervals:
            return ""
        low, high = self.intervals[name]
        return f" ({bootstrap.LEVEL:.0%} CI {low:.4f} to {high:.4f})"

    def top_losses(self) -> pd.DataFrame:
        """The highest-loss examples, highest first: their source row, truth, prediction and loss,
        then for tables their feature values."""
        o, worst = self.outputs, self.outputs.worst.numpy()
        frame = pd.DataFrame({"row": self.rows[worst]})
        if self.spec.task.is_classification:
            probs, targets = o.outputs.numpy(), o.targets.numpy()
            predicted = probs[worst].argmax(1)
            frame["true"] = [self.names[t] for t in targets[worst]]
            frame["predicted"] = [self.names[p] for p in predicted]
            frame["p(predicted)"] = probs[worst, predicted]
            frame["p(true)"] = probs[worst, targets[worst]]
            frame["loss (-log p(true))"] = o.losses.numpy()[worst]
        else:
            frame["target"] = o.targets.numpy()[worst]
            frame["prediction"] = o.outputs.numpy()[worst]
            frame["error"] = frame["prediction"] - frame["target"]
        if self.worst_features is not None:
            frame = pd.concat([frame, self.worst_features.reset_index(drop=True)], axis=1)
        return frame

    def classification(self) -> ClassificationNumbers:
        """The scores of a classifier (an AssertionError for a regression)."""
        assert isinstance(self.scores, ClassificationNumbers)
        return self.scores

    def confusion_figure(self) -> Figure:
        return figures.confusion_matrix(self.classification().confusion, self.names, self.split)

    def curves_figure(self) -> Figure | None:
        """ROC and precision-recall of class 1; None but for a binary task."""
        curves = self.classification().curves
        return figures.binary_curves(curves, self.names[1], self.split) if curves is not None else None

    def reliability_figure(self) -> Figure:
        """The reliability diagram as trained, and with calibrate=true after temperature scaling."""
        c, s = self.classification().calibration, self.scaling
        series = {"as trained" if s else self.split: (c.reliability, c.ece)}
        if s is not None:
            after = s.after[self.split]
            series[f"T = {s.temperature:.4f}"] = (after.reliability, after.ece)
        return figures.reliability(series, self.split)

    def regression_figure(self) -> Figure:
        assert isinstance(self.scores, RegressionNumbers)
        values, targets = self.outputs.outputs.numpy(), self.outputs.targets.numpy()
        return figures.regression(values, targets, self.spec.target_name, self.split, self.scores.r2)

    def top_losses_figure(self) -> Figure | None:
        """The top-loss images, true → predicted (its probability); None for tables and regressions."""
        images = self.outputs.worst_inputs
        if images is None or not self.spec.task.is_classification:
            return None
        probs, targets = self.outputs.outputs, self.outputs.targets
        shown = [
            (image.numpy(), int(targets[i]), int(probs[i].argmax()), float(probs[i].max()))
            for image, i in zip(images, self.outputs.worst.tolist(), strict=True)
        ]
        return mistakes_figure(shown, self.names)

    def report(self) -> Report:
        """The report: report.md's lines, its figures and tables by file name, its numbers."""
        return build(self)
