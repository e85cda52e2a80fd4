"""Linear and logistic regression: one Linear layer on the flattened features.

Their penalties are given in scikit-learn's terms, so that a setting carries across:
`alpha` as in `Ridge(alpha)`, `C` as in `LogisticRegression(C)`. Both are translated to the
shared `l2` strength on the mean loss, which needs the number of train rows.
"""

from collections.abc import Sequence

from torch import nn
from typing_extensions import Unpack

from litlab.data_spec import Task
from litlab.errors import UserError
from litlab.models.base import SupervisedModule
from litlab.models.nets import MLPNet, flat_size
from litlab.models.settings import ModelArgs


def _needs_rows(train_size: int, setting: str) -> None:
    if train_size < 1:
        raise UserError(f"{setting} needs train_size (the rows in the train split) > 0; got {train_size}")


class LinearModel(SupervisedModule):
    """One Linear layer on the flattened features (Flatten -> Linear), the net of both models."""

    def __init__(self, input_shape: Sequence[int], **shared: Unpack[ModelArgs]) -> None:
        super().__init__(**shared)
        self.net = MLPNet(flat_size(input_shape), [], self.num_outputs)
        # Zero, where scikit-learn's solvers start: the loss is convex, so the start changes only the
        # path to the optimum, and from zero that path is the same for every seed (and shorter).
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    @property
    def linear(self) -> nn.Linear:
        layer = self.net[-1]  # type: ignore[index]  # MLPNet is an nn.Sequential
        assert isinstance(layer, nn.Linear)
        return layer


class LinearRegression(LinearModel):
    """y = Wx + b. With `loss=mse` and `alpha=0` (the defaults) this is ordinary least squares;
    `alpha` > 0 is ridge regression, minimising ||y - Xw||^2 + alpha ||w||^2 as `Ridge(alpha)` does."""

    def __init__(self, input_shape: Sequence[int], alpha: float = 0.0, **shared: Unpack[ModelArgs]) -> None:
        super().__init__(input_shape, **shared)
        if self.task is not Task.REGRESSION:
            raise UserError(
                f"model=linear_regression needs a regression target, but the data is {self.task}; "
                "use model=logistic_regression (or mlp/cnn) for classification"
            )
        if not alpha >= 0:
            raise UserError(f"model.alpha={alpha} is invalid: the ridge penalty must be >= 0 (0 = least squares)")
        if alpha:
            _needs_rows(self.train_size, f"model.alpha={alpha}")
            # Ridge's sum of squares over n rows, divided by n, is our mean loss: alpha / n on ||w||^2.
            # Standardizing the target scales both terms alike, so the minimiser is Ridge's.
            self.l2 = alpha / self.train_size


class LogisticRegression(LinearModel):
    """One Linear layer: a single logit with BCE for 2 classes, softmax cross-entropy for more.

    `C` is the inverse penalty strength of scikit-learn's `LogisticRegression(C=...)`: it
    minimises C * sum(loss) + ||W||^2 / 2, the same optimum as our mean loss plus
    ||W||^2 / (2 C n). `C=null` fits without a penalty (scikit-learn's `penalty=None`).
    """

    def __init__(self, input_shape: Sequence[int], C: float | None = 1.0, **shared: Unpack[ModelArgs]) -> None:
        super().__init__(input_shape, **shared)
        if self.task is Task.REGRESSION:
            raise UserError(
                "model=logistic_regression needs a classification target, but the data is regression; "
                "use model=linear_regression (or mlp/cnn) for a continuous target"
            )
        if C is not None and not C > 0:
            raise UserError(f"model.C={C} is invalid: C must be > 0 (smaller = stronger penalty), or null for none")
        if C is not None:
            _needs_rows(self.train_size, f"model.C={C}")
            self.l2 = 1.0 / (2.0 * C * self.train_size)
