"""`model.ema=DECAY`: an exponential moving average of the weights (Lightning's EMAWeightAveraging),
validated and checkpointed with the averaged weights, updated after every optimizer step.

Lightning updates a WeightAveraging callback once per training step, and with
`model.steps_per_call=K` one training step holds K optimizer steps: the speed layer calls
`after_optimizer_step` after each of them, so that the average is the one K=1 gives."""

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging, WeightAveraging

from litlab.errors import UserError
from litlab.values import is_number


def ema_callback(decay: float | None) -> EMAWeightAveraging | None:
    """The averaging callback of `model.ema` (None: no averaging)."""
    if decay is None:
        return None
    if not (is_number(decay) and 0 < decay < 1):
        raise UserError(
            f"model.ema={decay!r} is invalid: give the average's decay per optimizer step in (0, 1), e.g. "
            "model.ema=0.99 (about the last 100 steps), or null for no averaging"
        )
    return EMAWeightAveraging(decay=float(decay))


def after_optimizer_step(trainer: L.Trainer, module: L.LightningModule) -> None:
    """Update every weight-averaging callback of `trainer` for the optimizer step just taken. Their
    own batch-end hook does it: it updates once per new `trainer.global_step`, so Lightning's call of
    it at the end of the training step adds no second update."""
    for callback in trainer.callbacks:  # type: ignore[attr-defined]  # Trainer.callbacks is a list
        if isinstance(callback, WeightAveraging):
            callback.on_train_batch_end(trainer, module, None, None, 0)
