"""`model.freeze_epochs=N`: train the output layers alone for N epochs, then the whole network,
the layers below at a lower rate that grows back (Lightning's BackboneFinetuning)."""

import lightning as L
from lightning.pytorch.callbacks import BackboneFinetuning
from torch.optim import Optimizer
from typing_extensions import override

from litlab.errors import UserError
from litlab.values import is_int


class FreezeThenUnfreeze(BackboneFinetuning):
    """BackboneFinetuning on the model's `backbone` (every layer below its head) that logs the
    backbone's learning rate each epoch as `train/backbone_lr`: 0 while frozen, so that the switch
    shows in TensorBoard beside the head's `lr-*` curve."""

    def __init__(self, freeze_epochs: int) -> None:
        # Unfrozen at a tenth of the head's rate, growing 1.5x per epoch up to it (Lightning's defaults).
        super().__init__(unfreeze_backbone_at_epoch=freeze_epochs, backbone_initial_ratio_lr=0.1, should_align=True)

    @override
    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: Optimizer) -> None:
        super().finetune_function(pl_module, epoch, optimizer)
        frozen = epoch < self.unfreeze_backbone_at_epoch
        lr = 0.0 if frozen else float(optimizer.param_groups[-1]["lr"])
        pl_module.log("train/backbone_lr", lr, on_step=False, on_epoch=True, batch_size=1)


def freeze_callback(freeze_epochs: int, has_backbone: bool, full_batch_optimizer: bool) -> FreezeThenUnfreeze | None:
    """The callback of `model.freeze_epochs` (0: none), refused where it cannot apply."""
    if not is_int(freeze_epochs) or freeze_epochs < 0:
        raise UserError(
            f"model.freeze_epochs={freeze_epochs!r} is invalid: give the epochs to train the head alone, "
            "an integer >= 0 (0: train every layer from the start)"
        )
    if not freeze_epochs:
        return None
    if not has_backbone:
        raise UserError(
            f"model.freeze_epochs={freeze_epochs}: this model has no layers below its output layer to freeze; "
            "use model=mlp (with hidden_sizes) or model=cnn, or model.freeze_epochs=0"
        )
    if full_batch_optimizer:
        raise UserError(
            f"model.freeze_epochs={freeze_epochs} needs an optimizer that takes parameter groups; L-BFGS does not: "
            "use optimizer=adam (or sgd, adamw), or model.freeze_epochs=0"
        )
    return FreezeThenUnfreeze(freeze_epochs)
