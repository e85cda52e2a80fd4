"""Parity of an exported bundle with the checkpoint: the same raw inputs through the checkpoint's predictor
and the bundle's (the one predict.py and serve.py run, with bundle.json as they read it), one at a time
and all at once, compared by the largest absolute difference of the outputs and the agreement of the
predicted classes. An export that changes a prediction is refused."""

from typing import Any

import numpy as np

from litlab.data_spec import Task
from litlab.runtime.predict_files import Predictor, outputs_of


def compare(reference: np.ndarray, exported: np.ndarray, task: Task) -> dict[str, Any]:
    """max_abs_diff of the outputs; for classes, the share of inputs whose predicted class agrees."""
    result: dict[str, Any] = {"max_abs_diff": float(np.abs(reference.astype(np.float64) - exported).max())}
    if task.is_classification:
        result["agreement"] = float((reference.argmax(axis=1) == exported.argmax(axis=1)).mean())
    return result


def measure(reference: Predictor, exported: Predictor, x: np.ndarray) -> dict[str, Any]:
    """The checkpoint's outputs for the raw inputs `x` (N, ...) against the bundle's, at batch 1 and batch N;
    each predictor scales `x` with its own statistics (runtime.predict_files.outputs_of)."""
    task = reference.spec.task
    expected = outputs_of(reference, x)
    one_by_one = np.concatenate([outputs_of(exported, x[i : i + 1]) for i in range(len(x))])
    return {
        "rows": len(x),
        "batch_1": compare(expected, one_by_one, task),
        "batch_N": compare(expected, outputs_of(exported, x), task),
    }


def summary(parity: dict[str, Any]) -> str:
    """The parity in words: `on 270 test rows, batch 1: max |diff| 2.4e-07, classes agree 100.00%; batch N: ...`."""

    def one(found: dict[str, Any]) -> str:
        agree = f", classes agree {found['agreement']:.2%}" if "agreement" in found else ""
        return f"max |diff| {found['max_abs_diff']:.2g}{agree}"

    return f"on {parity['rows']} test rows, batch 1: {one(parity['batch_1'])}; batch N: {one(parity['batch_N'])}"


def refusal(parity: dict[str, Any], task: Task, tolerance: float) -> str | None:
    """Why the export is refused (one line with the numbers), or None: a class that changed, or a
    regression value off by more than `tolerance` (in the target's units)."""
    for batch in ("batch_1", "batch_N"):
        found = parity[batch]
        changed = task.is_classification and found["agreement"] < 1.0
        off = not task.is_classification and found["max_abs_diff"] > tolerance
        if changed or off:
            what = (
                f"agreement {found['agreement']:.4f}"
                if changed
                else f"max abs diff {found['max_abs_diff']:.3g} > {tolerance:g}"
            )
            return (
                f"the exported model does not reproduce the checkpoint on the test split ({parity['rows']} rows, "
                f"{batch}: {what}, max abs diff {found['max_abs_diff']:.3g}); no bundle written"
            )
    return None
