"""Seeded synthetic regression, `y = f(x) + noise`, with the true function kept for checking."""

import numpy as np
from typing_extensions import Unpack, override

from litlab.data.arrays import Arrays
from litlab.data.base import DataArgs, SplitDataModule
from litlab.data_spec import InputKind, Task
from litlab.errors import UserError

FUNCTIONS = ("linear", "sine")


class SyntheticRegressionDataModule(SplitDataModule):
    """`linear`: y = x·w + b + noise. `sine`: y = sin(x·w) + noise, a 1-D curve when input_dim=1.

    w ~ N(0, 1) per feature and b ~ N(0, 1) are drawn from `seed`; x ~ U(-3, 3).
    """

    def __init__(
        self,
        num_samples: int = 1000,
        input_dim: int = 5,
        function: str = "linear",
        noise: float = 0.1,
        **shared: Unpack[DataArgs],
    ) -> None:
        if function not in FUNCTIONS:
            raise UserError(f"data.function={function!r} is unknown; valid: {', '.join(FUNCTIONS)}")
        if num_samples < 10 or input_dim < 1 or noise < 0:
            raise UserError(
                f"synthetic_regression needs num_samples >= 10, input_dim >= 1 and noise >= 0; "
                f"got num_samples={num_samples}, input_dim={input_dim}, noise={noise}"
            )
        super().__init__(**shared)
        self.num_samples, self.input_dim, self.function, self.noise = num_samples, input_dim, function, noise
        rng = np.random.default_rng(self.seed)
        self.true_weight = rng.standard_normal(input_dim).astype("float32")
        self.true_bias = float(rng.standard_normal())
        self._rng = rng

    @override
    def load(self) -> Arrays:
        x = self._rng.uniform(-3, 3, size=(self.num_samples, self.input_dim)).astype("float32")
        z = x @ self.true_weight
        y = z + self.true_bias if self.function == "linear" else np.sin(z)
        y = y + self.noise * self._rng.standard_normal(self.num_samples)
        names = [f"x{i}" for i in range(self.input_dim)]
        return Arrays(x, y.astype("float32"), Task.REGRESSION, InputKind.TABLE, feature_names=names)
