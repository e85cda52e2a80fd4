"""Two evaluations of the same split, compared row by row: `litlab report --compare EVAL_A EVAL_B`.
Each headline metric of A minus B, with the paired bootstrap interval of the difference
(litlab.evaluation.bootstrap): both models' predictions of each resampled row are drawn together."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from litlab.errors import UserError
from litlab.evaluation import bootstrap
from litlab.evaluation.record import EVALUATION

# The columns of {split}_predictions.csv that hold the truth and the prediction, by task.
CLASSIFIED, REGRESSED = ("true_class", "pred_class"), ("target", "prediction")


@dataclass(frozen=True)
class Evaluated:
    """One evaluate.py run dir: its split and that split's predictions, by source row."""

    folder: Path
    split: str
    predictions: pd.DataFrame

    @classmethod
    def read(cls, folder: Path) -> "Evaluated":
        try:
            split = json.loads((folder / EVALUATION).read_text())["split"]
            predictions = pd.read_csv(folder / f"{split}_predictions.csv").set_index("row").sort_index()
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(
                f"{folder} is not a dir of litlab evaluate ({type(e).__name__}: {e}); give two run dirs of "
                "`litlab evaluate ckpt_path=...`, each with evaluation.json and its split's predictions CSV"
            ) from None
        return cls(folder, split, predictions)


def paired(a: Evaluated, b: Evaluated) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(truth, A's predictions, B's predictions, classification) on the rows both scored; refused
    unless both scored the same rows of the same split with the same truth."""
    truth, predicted = CLASSIFIED if CLASSIFIED[0] in a.predictions else REGRESSED
    same = (
        a.split == b.split
        and a.predictions.index.equals(b.predictions.index)
        and truth in b.predictions
        and np.array_equal(a.predictions[truth].to_numpy(), b.predictions[truth].to_numpy())
    )
    if not same:
        raise UserError(
            f"{a.folder} ({a.split}, {len(a.predictions)} rows) and {b.folder} ({b.split}, {len(b.predictions)} "
            "rows) scored other rows: compare two evaluations of the same split of the same data"
        )
    y = a.predictions[truth].to_numpy()
    return y, a.predictions[predicted].to_numpy(), b.predictions[predicted].to_numpy(), truth == CLASSIFIED[0]


def comparison_lines(folder_a: Path, folder_b: Path) -> list[str]:
    """One line per headline metric: A, B, A - B and its paired interval, and what that says."""
    a, b = Evaluated.read(folder_a), Evaluated.read(folder_b)
    y, pred_a, pred_b, classification = paired(a, b)
    scores = bootstrap.CLASSIFICATION if classification else bootstrap.REGRESSION
    lines = [f"A = {a.folder}, B = {b.folder}: {len(y)} {a.split} rows, paired bootstrap "
             f"({bootstrap.RESAMPLES} resamples, seed {bootstrap.SEED}, {bootstrap.LEVEL:.0%} interval)"]  # fmt: skip
    for name, score in scores.items():
        difference, low, high = bootstrap.paired_difference(score.compute, y, pred_a, pred_b, classification)
        if low <= 0 <= high:
            says = "not distinguishable on these rows"
        else:
            says = f"{'A' if (low > 0) == score.higher_is_better else 'B'} is better"
        score_a, score_b = score.compute(y, pred_a, None), score.compute(y, pred_b, None)
        lines.append(
            f"{name}: A {score_a:.4f}, B {score_b:.4f}, A - B {difference:+.4f} ({low:+.4f} to {high:+.4f}): {says}"
        )
    return lines
