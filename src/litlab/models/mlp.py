"""Multi-layer perceptron for classification or regression."""

from collections.abc import Sequence
from typing import cast

from torch import nn
from typing_extensions import Unpack, override

from litlab.models.base import SupervisedModule
from litlab.models.nets import MLPNet, flat_size, init_weights
from litlab.models.settings import ModelArgs


class MLP(SupervisedModule):
    """Dense blocks of `hidden_sizes` (Linear -> [BN] -> activation -> [dropout]) on flattened inputs."""

    def __init__(
        self,
        input_shape: Sequence[int],
        hidden_sizes: Sequence[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        init: str = "default",
        **shared: Unpack[ModelArgs],
    ) -> None:
        super().__init__(**shared)
        self.net = MLPNet(flat_size(input_shape), list(hidden_sizes), self.num_outputs, activation, dropout, batch_norm)
        init_weights(self.net, init, activation)

    @property
    @override
    def backbone(self) -> nn.Module | None:
        """Every dense block below the output layer (None without hidden layers)."""
        below = list(cast(MLPNet, self.net))[1:-1]  # after Flatten, before the output Linear
        return nn.Sequential(*below) if below else None
