"""Model outputs (probabilities (N, C) or values (N,)) as a table and as JSON: the one format of
predict.py's predictions, evaluate.py's test_predictions.csv and the server's answers."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from litlab.data_spec import Task


def class_names(names: Sequence[str] | None, outputs: np.ndarray) -> list[str]:
    return list(names or [str(i) for i in range(outputs.shape[1])])


def outputs_table(
    outputs: np.ndarray, task: Task, names: Sequence[str] | None, truth: np.ndarray | None = None
) -> pd.DataFrame:
    """`pred_class`, `pred_label` and one `prob_<label>` per class, or `prediction`. With the true
    values `truth` (N,) (evaluate.py), they come first: `true_class` and `true_label`, or `target`,
    so the rows predicted wrong can be read off the table."""
    if task is Task.REGRESSION:
        return pd.DataFrame({**({"target": truth} if truth is not None else {}), "prediction": outputs})
    labels = class_names(names, outputs)
    pred = outputs.argmax(axis=1)
    columns = {"true_class": truth, "true_label": [labels[i] for i in truth]} if truth is not None else {}
    frame = pd.DataFrame({**columns, "pred_class": pred, "pred_label": [labels[i] for i in pred]})
    for i, name in enumerate(labels):
        frame[f"prob_{name}"] = outputs[:, i]
    return frame


def outputs_json(outputs: np.ndarray, task: Task, names: Sequence[str] | None) -> list[dict[str, Any]]:
    """One object per input: {"class", "label", "probabilities": {label: p}} or {"prediction": value}."""
    if task is Task.REGRESSION:
        return [{"prediction": float(v)} for v in outputs]
    labels = class_names(names, outputs)
    return [
        {
            "class": int(p.argmax()),
            "label": labels[int(p.argmax())],
            "probabilities": dict(zip(labels, map(float, p), strict=True)),
        }
        for p in outputs
    ]
