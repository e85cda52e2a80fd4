"""Multi-layer perceptron for classification or regression."""

from collections.abc import Sequence

from litlab.models.base import OptimizerFactory, SchedulerFactory, SupervisedModule
from litlab.models.nets import MLPNet, flat_size, init_weights


class MLP(SupervisedModule):
    """Dense blocks of `hidden_sizes` (Linear -> [BN] -> activation -> [dropout]) on flattened inputs."""

    def __init__(
        self,
        task: str,
        input_shape: Sequence[int],
        num_outputs: int,
        train_size: int = 0,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        hidden_sizes: Sequence[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        init: str = "default",
        loss: str = "mse",
        l1: float = 0.0,
        l2: float = 0.0,
        compile: bool = False,
    ) -> None:
        super().__init__(
            task, num_outputs, train_size, target_mean, target_std, optimizer, scheduler, loss, l1, l2, compile
        )
        self.net = MLPNet(flat_size(input_shape), list(hidden_sizes), num_outputs, activation, dropout, batch_norm)
        init_weights(self.net, init, activation)
