"""Model outputs as a table: the one format of predict.py's predictions and evaluate.py's test_predictions.csv."""

import pandas as pd
import torch

from litlab.data.spec import DataSpec
from litlab.task import Task


def outputs_frame(outputs: torch.Tensor, spec: DataSpec) -> pd.DataFrame:
    """`SupervisedModule.predict_outputs` (probabilities (N, C) or values (N,)) as a table:
    `pred_class`, `pred_label` and one `prob_<label>` per class, or `prediction`."""
    if spec.task is Task.REGRESSION:
        return pd.DataFrame({"prediction": outputs.numpy()})
    names = list(spec.class_names or [str(i) for i in range(outputs.shape[1])])
    probs = outputs.numpy()
    pred = probs.argmax(axis=1)
    frame = pd.DataFrame({"pred_class": pred, "pred_label": [names[i] for i in pred]})
    for i, name in enumerate(names):
        frame[f"prob_{name}"] = probs[:, i]
    return frame


def with_truth(frame: pd.DataFrame, truth: torch.Tensor, spec: DataSpec) -> pd.DataFrame:
    """`frame` (outputs_frame) with the true value before the prediction: `true_class` and
    `true_label`, or `target`, so the rows predicted wrong can be read off the table."""
    values = truth.numpy()
    if spec.task is Task.REGRESSION:
        return pd.concat([pd.DataFrame({"target": values}), frame], axis=1)
    names = list(spec.class_names or [str(i) for i in range(int(values.max()) + 1)])
    true = pd.DataFrame({"true_class": values, "true_label": [names[i] for i in values]})
    return pd.concat([true, frame], axis=1)
