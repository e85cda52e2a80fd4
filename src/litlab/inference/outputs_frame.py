"""Model outputs as a table: the one format of predict.py's predictions and evaluate.py's test_predictions.csv,
for torch tensors and a DataSpec; the format itself is runtime/outputs.py's, shared with the torch-free paths."""

import numpy as np
import pandas as pd
import torch

from litlab.data_spec import DataSpec
from litlab.runtime.outputs import outputs_table


def outputs_frame(
    outputs: torch.Tensor | np.ndarray, spec: DataSpec, truth: torch.Tensor | np.ndarray | None = None
) -> pd.DataFrame:
    """`SupervisedModule.predict_outputs` (probabilities (N, C) or values (N,)) as a table:
    `pred_class`, `pred_label` and one `prob_<label>` per class, or `prediction`. With the true
    values `truth` (N,) (evaluate.py), they come first: `true_class` and `true_label`, or `target`,
    so the rows predicted wrong can be read off the table."""
    values = outputs.numpy() if isinstance(outputs, torch.Tensor) else outputs
    true = truth.numpy() if isinstance(truth, torch.Tensor) else truth
    return outputs_table(values, spec.task, spec.class_names, true)
