"""The speed layer: how a model trains faster without training differently.

- model.steps_per_call (steps.py): K optimizer steps over K batches in one Lightning training step.
- model.cuda_graphs (cuda_graphs.py): each training step a replay of one captured CUDA graph
  (experimental: not yet measured on a GPU).

What the rest of litlab uses: run.build builds a model as `training_class(...)` (module.py), the
model's own class when neither setting is on; the training job asks `check_trainer` before it
fits and records `steps_per_call` (auto's choice). The speed layer reads a model through its public
surface only (SupervisedModule.step, loss_and_output, keep_outputs, check_and_log_step_loss, net).
"""

from litlab.speed.module import SpeedLayer, check_trainer, steps_per_call, training_class

__all__ = ["SpeedLayer", "check_trainer", "steps_per_call", "training_class"]
