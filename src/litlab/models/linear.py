"""Linear and logistic regression: one Linear layer on the flattened features."""

from collections.abc import Sequence

from litlab.models.base import OptimizerFactory, SchedulerFactory, SupervisedModule
from litlab.models.nets import MLPNet, flat_size
from litlab.task import Task


class LinearRegression(SupervisedModule):
    """y = Wx + b, trained with mse, l1 or huber loss and optional l1/l2 penalties on W."""

    def __init__(
        self,
        task: str,
        input_shape: Sequence[int],
        num_outputs: int,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        loss: str = "mse",
        l1: float = 0.0,
        l2: float = 0.0,
        compile: bool = False,
    ) -> None:
        if task != Task.REGRESSION:
            raise ValueError(
                f"linear_regression needs a regression target, but the data is {task}; "
                "use model=logistic_regression (or mlp/cnn) for classification"
            )
        super().__init__(task, num_outputs, optimizer, scheduler, loss, l1, l2, compile)
        self.net = MLPNet(flat_size(input_shape), [], num_outputs)  # Flatten -> Linear

    @property
    def linear(self):
        return self.net[-1]


class LogisticRegression(SupervisedModule):
    """One Linear layer: a single logit with BCE for 2 classes, softmax cross-entropy for more."""

    def __init__(
        self,
        task: str,
        input_shape: Sequence[int],
        num_outputs: int,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        l1: float = 0.0,
        l2: float = 0.0,
        compile: bool = False,
    ) -> None:
        if task == Task.REGRESSION:
            raise ValueError(
                "logistic_regression needs a classification target, but the data is regression; "
                "use model=linear_regression (or mlp/cnn) for a continuous target"
            )
        super().__init__(task, num_outputs, optimizer, scheduler, l1=l1, l2=l2, compile=compile)
        self.net = MLPNet(flat_size(input_shape), [], num_outputs)

    @property
    def linear(self):
        return self.net[-1]
