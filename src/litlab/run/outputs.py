"""Model outputs as a table: the one format of predict.py's predictions and evaluate.py's test_predictions.csv."""

import pandas as pd
import torch

from litlab.data.spec import DataSpec
from litlab.task import Task


def outputs_frame(outputs: torch.Tensor, spec: DataSpec, truth: torch.Tensor | None = None) -> pd.DataFrame:
    """`SupervisedModule.predict_outputs` (probabilities (N, C) or values (N,)) as a table:
    `pred_class`, `pred_label` and one `prob_<label>` per class, or `prediction`. With the true
    values `truth` (N,) (evaluate.py), they come first: `true_class` and `true_label`, or `target`,
    so the rows predicted wrong can be read off the table."""
    true = truth.numpy() if truth is not None else None
    if spec.task is Task.REGRESSION:
        return pd.DataFrame({**({"target": true} if true is not None else {}), "prediction": outputs.numpy()})
    names = list(spec.class_names or [str(i) for i in range(outputs.shape[1])])
    probs = outputs.numpy()
    pred = probs.argmax(axis=1)
    columns = {"true_class": true, "true_label": [names[i] for i in true]} if true is not None else {}
    frame = pd.DataFrame({**columns, "pred_class": pred, "pred_label": [names[i] for i in pred]})
    for i, name in enumerate(names):
        frame[f"prob_{name}"] = probs[:, i]
    return frame
