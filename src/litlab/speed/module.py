"""A model class under the speed layer: its training step takes the optimizer steps itself.

Lightning hands a `training_step` whose signature names `dataloader_iter` an iterator over the
batches, and leaves the optimizer to a module whose `automatic_optimization` is off; it reads both
from the module. So a model trained with model.steps_per_call != 1 or model.cuda_graphs=true is
built (run.build) as its own class with SpeedLayer first among its bases (training_class). Its
checkpoints name the plain class, which every other use of a model (evaluation, inference, export)
builds: the speed layer changes how a model trains, not what it is.
"""

from collections.abc import Iterator
from typing import Any, cast

import lightning as L
from torch.optim import LBFGS
from typing_extensions import override

from litlab.checkpoints.store import ENTRY, class_path
from litlab.errors import UserError
from litlab.models import SupervisedModule
from litlab.speed import cuda_graphs as graphs
from litlab.speed import steps


class SpeedLayer(L.LightningModule):
    """Put before a SupervisedModule class by training_class(). Its `stepper` runs each call of
    Lightning's training step: up to model.steps_per_call optimizer steps (litlab.speed.steps), each a
    replay of a captured CUDA graph with model.cuda_graphs=true (litlab.speed.cuda_graphs)."""

    model_class: type[SupervisedModule]  # the class this one trains: what checkpoints name

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False  # the stepper steps the optimizer
        settings = self.hparams  # saved by SupervisedModule.__init__
        self.stepper = steps.StepsPerCall(steps.parse(settings["steps_per_call"]), bool(settings["cuda_graphs"]))

    @override
    def training_step(self, dataloader_iter: Iterator) -> None:
        # A SupervisedModule: training_class puts SpeedLayer before one
        self.stepper.run(cast(SupervisedModule, self), dataloader_iter)

    @override
    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.stepper.captured is not None and stage == "fit":  # the first point where the device is known
            graphs.check_trainer(self.trainer)

    @override
    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        steps.step_epoch_schedulers(self.trainer)  # Lightning does it only under automatic optimization

    @override
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[ENTRY]["model_class"] = class_path(self.model_class)


_under_speed_layer: dict[type, type[SupervisedModule]] = {}  # one class per model class


def under_speed_layer(model_class: type[SupervisedModule]) -> type[SupervisedModule]:
    """`model_class` with SpeedLayer first among its bases."""
    if model_class not in _under_speed_layer:
        bases = (SpeedLayer, model_class)
        _under_speed_layer[model_class] = type(model_class.__name__, bases, {"model_class": model_class})
    return _under_speed_layer[model_class]


def training_class(
    model_class: type, steps_per_call: object, cuda_graphs: bool, optimizer: Any, scheduler: Any
) -> type:
    """The class to build a model of `model_class` as for training: under the speed layer when
    model.steps_per_call != 1 or model.cuda_graphs=true, else `model_class` itself. A setting the
    speed layer cannot run with this optimizer and scheduler is one UserError, before the model is built."""
    if cuda_graphs:
        graphs.check_settings(optimizer, scheduler)
    if steps.parse(steps_per_call) == 1 and not cuda_graphs:
        return model_class
    if getattr(optimizer, "func", None) is LBFGS:
        raise UserError(
            f"model.steps_per_call={steps_per_call} does not apply to L-BFGS, which takes one full-batch "
            "step per epoch: leave model.steps_per_call at 1"
        )
    if not issubclass(model_class, SupervisedModule):
        raise UserError(f"model.steps_per_call and model.cuda_graphs apply to litlab's models, not {model_class}")
    return under_speed_layer(model_class)


def check_trainer(model: L.LightningModule, trainer: L.Trainer) -> None:
    """One UserError, before training, for a Trainer option that `model`'s speed layer replaces."""
    if isinstance(model, SpeedLayer):
        steps.check_trainer(trainer)


def steps_per_call(model: L.LightningModule) -> int | None:
    """The optimizer steps per Lightning step `model` took: model.steps_per_call, auto's choice once
    made (None before a first step decided it), 1 without the speed layer."""
    return model.stepper.k if isinstance(model, SpeedLayer) else 1
