"""The scikit-learn reference for a run: fitted on exactly the rows and feature scaling that
the run's DataModule trains on, and scored on the same test rows."""

from collections.abc import Mapping

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score

from litlab.data import SplitDataModule


def scaled_split(dm: SplitDataModule, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Split `name` as the model sees it: scaled features flattened to (N, F), targets (N,)."""
    split = dm.split_tensors(name)
    return dm.scaler(split.x).flatten(1).double().numpy(), split.y.numpy()


def fit_reference(
    dm: SplitDataModule,
    C: float | None = 1.0,
    alpha: float = 0.0,
    tol: float = 1e-4,
    class_weight: str | list[float] | None = None,
):
    """scikit-learn's counterpart of litlab's linear models on the train split:
    LogisticRegression(C, class_weight) for classes, LinearRegression (alpha = 0) or Ridge(alpha) for a target."""
    x, y = scaled_split(dm, "train")
    if dm.task.is_classification:
        weights = dict(enumerate(class_weight)) if isinstance(class_weight, list | tuple) else class_weight
        model = LogisticRegression(C=np.inf if C is None else C, tol=tol, max_iter=10_000, class_weight=weights)
    else:
        model = Ridge(alpha=alpha, tol=tol) if alpha else LinearRegression()
    return model.fit(x, y)


def fit_reference_like(dm: SplitDataModule, model_cfg: Mapping) -> object:
    """fit_reference with the penalty (`C` or `alpha`) and `class_weight` of a litlab model config, where given."""
    return fit_reference(dm, **{k: model_cfg[k] for k in ("C", "alpha", "class_weight") if k in model_cfg})


def scores_on_test(dm: SplitDataModule, model) -> dict[str, float]:
    """The fitted `model`'s test metrics under litlab's names (acc and macro f1, or r2 and mse)."""
    x, y = scaled_split(dm, "test")
    pred = model.predict(x)
    if dm.task.is_classification:
        return {"test/acc": accuracy_score(y, pred), "test/f1": f1_score(y, pred, average="macro")}
    return {"test/r2": r2_score(y, pred), "test/mse": mean_squared_error(y, pred)}
