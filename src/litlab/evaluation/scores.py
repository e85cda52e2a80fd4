"""The numbers of evaluate.py's report, from one split's probabilities or values (torchmetrics):
accuracy, F1, per-class scores, the most-confused pairs, calibration (ECE and its bins), the binary
curves; R², MAE and RMSE for regression. Binary tasks are scored as two classes, as in training
(litlab.models.metrics): probabilities [1 - p, p], the positive class being class 1."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_average_precision,
    binary_precision_recall_curve,
    binary_roc,
    multiclass_accuracy,
    multiclass_calibration_error,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

ECE_BINS = 15  # equal-width confidence bins, as Guo et al. (2017)
CONFUSED_PAIRS = 10


@dataclass(frozen=True)
class BinaryCurves:
    """ROC and precision-recall curves of the positive class (class 1), with their areas."""

    auroc: float
    average_precision: float
    fpr: np.ndarray
    tpr: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


@dataclass(frozen=True)
class Calibration:
    """Expected calibration error (L1, ECE_BINS bins of the top class's probability), its bins
    (`reliability`: one row per non-empty bin) and the mean negative log-likelihood."""

    ece: float
    nll: float
    reliability: pd.DataFrame  # lower, upper, count, confidence, accuracy


@dataclass(frozen=True)
class ClassificationNumbers:
    """A classifier's scores on one split."""

    accuracy: float
    f1_macro: float
    f1_weighted: float
    per_class: pd.DataFrame  # class, precision, recall, f1, support: one row per class
    confusion: np.ndarray  # (C, C) counts; rows: true class, columns: predicted
    confused_pairs: pd.DataFrame  # true, predicted, count: off the diagonal, most first
    calibration: Calibration
    curves: BinaryCurves | None  # binary tasks only

    def scalars(self) -> dict[str, float]:
        """The headline numbers, by the names evaluation.json and TensorBoard give them."""
        found = {"acc": self.accuracy, "f1_macro": self.f1_macro, "f1_weighted": self.f1_weighted}
        found |= {"ece": self.calibration.ece, "nll": self.calibration.nll}
        if self.curves is not None:
            found |= {"auroc": self.curves.auroc, "average_precision": self.curves.average_precision}
        return found


@dataclass(frozen=True)
class RegressionNumbers:
    """A regression's scores on one split, in the target's units."""

    r2: float
    mae: float
    rmse: float

    def scalars(self) -> dict[str, float]:
        return {"r2": self.r2, "mae": self.mae, "rmse": self.rmse}


@dataclass(frozen=True)
class TemperatureScaling:
    """calibrate=true: the temperature fitted on the val split, and each split's calibration with
    the checkpoint's own temperature (`before`) and with the fitted one (`after`)."""

    temperature: float
    before: dict[str, Calibration]  # split name -> its calibration
    after: dict[str, Calibration]
    fitted_on: int  # rows of the val split
    checkpoint: str  # the calibrated checkpoint written

    def scalars(self) -> dict[str, float]:
        found = {"temperature": self.temperature}
        for split in self.before:
            found |= {f"{split}_ece_before": self.before[split].ece, f"{split}_ece_after": self.after[split].ece}
            found |= {f"{split}_nll_before": self.before[split].nll, f"{split}_nll_after": self.after[split].nll}
        return found


def reliability_bins(probs: torch.Tensor, targets: torch.Tensor, bins: int = ECE_BINS) -> pd.DataFrame:
    """The bins of the top class's probability, binned as torchmetrics' CalibrationError bins them:
    [k/bins, (k+1)/bins), in float32, and a probability of exactly 1.0 (float32 softmax saturates)
    in a bin of its own, [1, 1]. sum(count / N * |accuracy - confidence|) over the rows is the ECE."""
    confidence, predicted = probs.float().max(dim=1)
    correct = (predicted == targets).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float32)
    slot = torch.bucketize(confidence, edges, right=True) - 1  # 0..bins, `bins` holding the 1.0s
    count = torch.bincount(slot, minlength=bins + 1).double()
    total = torch.zeros(bins + 1, dtype=torch.float64)
    hits = torch.zeros(bins + 1, dtype=torch.float64)
    total.index_add_(0, slot, confidence.double())
    hits.index_add_(0, slot, correct)
    used = count > 0
    upper = torch.cat([edges[1:], torch.ones(1)]).double()
    return pd.DataFrame(
        {
            "lower": torch.cat([edges[:-1], torch.ones(1)]).double()[used].numpy(),
            "upper": upper[used].numpy(),
            "count": count[used].long().numpy(),
            "confidence": (total[used] / count[used]).numpy(),
            "accuracy": (hits[used] / count[used]).numpy(),
        }
    )


def calibration(probs: torch.Tensor, targets: torch.Tensor, losses: torch.Tensor) -> Calibration:
    """ECE by torchmetrics (top-label, L1, ECE_BINS bins), the bins it sums over, and the mean of
    the per-example negative log-likelihoods `losses`."""
    ece = multiclass_calibration_error(probs.float(), targets, probs.shape[1], n_bins=ECE_BINS, norm="l1")
    return Calibration(float(ece), float(losses.double().mean()), reliability_bins(probs, targets))


def per_class(preds: torch.Tensor, targets: torch.Tensor, names: list[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support of each class (0 where undefined, as scikit-learn's zero_division=0)."""
    c = len(names)
    scores = {
        "precision": multiclass_precision(preds, targets, c, average=None),
        "recall": multiclass_recall(preds, targets, c, average=None),
        "f1": multiclass_f1_score(preds, targets, c, average=None),
    }
    frame = pd.DataFrame({"class": names, **{k: v.double().numpy() for k, v in scores.items()}})
    frame["support"] = torch.bincount(targets, minlength=c).numpy()
    return frame


def confused_pairs(confusion: np.ndarray, names: list[str], k: int = CONFUSED_PAIRS) -> pd.DataFrame:
    """The `k` (true, predicted) pairs off the diagonal with the most examples, most first (ties: in class order)."""
    true, pred = np.nonzero(confusion * (1 - np.eye(len(names), dtype=confusion.dtype)))
    counts = confusion[true, pred]
    order = np.argsort(-counts, kind="stable")[:k]
    return pd.DataFrame(
        {"true": [names[i] for i in true[order]], "predicted": [names[j] for j in pred[order]], "count": counts[order]}
    )


def binary_curves(probs: torch.Tensor, targets: torch.Tensor) -> BinaryCurves:
    p = probs[:, 1].double()
    fpr, tpr, _ = binary_roc(p, targets)
    precision, recall, _ = binary_precision_recall_curve(p, targets)
    return BinaryCurves(
        auroc=float(binary_auroc(p, targets)),
        average_precision=float(binary_average_precision(p, targets)),
        fpr=fpr.numpy(),
        tpr=tpr.numpy(),
        precision=precision.numpy(),
        recall=recall.numpy(),
    )


def classification_numbers(
    probs: torch.Tensor, targets: torch.Tensor, losses: torch.Tensor, names: list[str], binary: bool
) -> ClassificationNumbers:
    """probs: (N, C) class probabilities ([1 - p, p] for binary); targets: (N,) class ids;
    losses: (N,) each example's negative log-likelihood; binary: add the ROC and PR curves."""
    c, targets = len(names), targets.long()
    preds = probs.argmax(dim=1)  # as test_predictions.csv's pred_class
    confusion = multiclass_confusion_matrix(preds, targets, c).numpy()
    return ClassificationNumbers(
        accuracy=float(multiclass_accuracy(preds, targets, c, average="micro")),
        f1_macro=float(multiclass_f1_score(preds, targets, c, average="macro")),
        f1_weighted=float(multiclass_f1_score(preds, targets, c, average="weighted")),
        per_class=per_class(preds, targets, names),
        confusion=confusion,
        confused_pairs=confused_pairs(confusion, names),
        calibration=calibration(probs, targets, losses),
        curves=binary_curves(probs, targets) if binary else None,
    )


def regression_numbers(values: torch.Tensor, targets: torch.Tensor) -> RegressionNumbers:
    """values, targets: (N,), in the target's units; computed in float64."""
    v, t = values.double(), targets.double()
    return RegressionNumbers(
        r2=float(r2_score(v, t)),
        mae=float(mean_absolute_error(v, t)),
        rmse=float(mean_squared_error(v, t, squared=False)),
    )
