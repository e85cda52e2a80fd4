"""The training logic every model shares: one step for train/val/test, losses, metrics, optimizers."""

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torch.optim import LBFGS
from torch.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau
from torchmetrics import MeanMetric
from typing_extensions import override

from litlab.checkpoints import init_from
from litlab.checkpoints.store import ENTRY, entry
from litlab.compat import CheapHookName
from litlab.data_spec import InputKind, Task
from litlab.models import metrics, tall
from litlab.models.settings import (
    REGRESSION_LOSSES,
    OptimizerFactory,
    SchedulerFactory,
    check_settings,
    class_weights,
)
from litlab.weights import averaging, freezing

STAGES = ("train", "val", "test")
Batch = tuple[torch.Tensor, torch.Tensor]  # (x, y): (B, ...) scaled inputs, (B,) class ids or targets
StepOutputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (network output, targets, loss) of a batch


class SupervisedModule(CheapHookName, L.LightningModule):
    """Wraps `self.net` (set by the subclass): logits or values of shape (B, num_outputs).

    The loss follows the task: cross-entropy for multiclass, BCE-with-logits on one logit
    for binary, `loss` (mse, l1 or huber; None: mse) for regression. `l1`/`l2` add a penalty on the
    weight matrices to the mean loss. `optimizer` and `scheduler` are partials (Hydra
    `_partial_: true`) that get the parameters / optimizer; `optimizer` may be None for
    inference only. The data tells the module `train_size` (rows in the train split, which
    penalties in scikit-learn's terms scale with) and, for regression, the train split's
    `target_mean`/`target_std`: the network predicts the standardized target, and losses are
    computed on it, while metrics and predictions are in the target's own units.

    `steps_per_call` and `cuda_graphs` are kept with the other settings (hparams); the speed layer
    (litlab.speed) reads them when run.build builds a model that trains under it. So is `init_from`,
    the checkpoint whose matching layers `load_start_weights` loads into a model built for training
    (run.build calls it; a model rebuilt from its own checkpoint does not read it again).
    `freeze_epochs` and `ema` are the callbacks the module brings to fit (configure_callbacks,
    litlab.weights). For images the data also tells `pixel_unit` (Scaler.pixel_unit: how its input
    maps back to pixels in [0, 1]), for networks whose weights were trained on such pixels.
    """

    net: nn.Module
    class_weights: torch.Tensor | None  # a buffer, set in __init__
    input_kinds: tuple[InputKind, ...] = (InputKind.TABLE, InputKind.IMAGE)  # what the net takes (CNN: images)

    def __init__(
        self,
        task: str,
        num_outputs: int,
        train_size: int = 0,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        loss: str | None = None,
        l1: float = 0.0,
        l2: float = 0.0,
        compile: bool = False,
        steps_per_call: int | str = 1,
        cuda_graphs: bool = False,
        class_weight: str | list[float] | None = None,
        class_counts: list[int] | None = None,
        temperature: float = 1.0,
        init_from: str | None = None,
        freeze_epochs: int = 0,
        ema: float | None = None,
        pixel_unit: list[list[float]] | None = None,
    ) -> None:
        super().__init__()
        self.task, self.num_outputs = Task.parse(task), num_outputs
        check_settings(self.task, loss, l1, l2, getattr(optimizer, "keywords", {}).get("lr"), target_std)
        self.optimizer, self.scheduler = optimizer, scheduler
        self.train_size, self.target_mean, self.target_std = train_size, target_mean, target_std
        # Logits are divided by it before softmax/sigmoid: 1 when trained; `evaluate.py calibrate=true`
        # fits it on the val split (temperature scaling) and saves it in a new checkpoint.
        self.temperature = temperature
        self.loss_name, self.l1, self.l2, self.compile_net = loss or "mse", l1, l2, compile
        # (C,) per-class loss weights (model.class_weight); not saved: rebuilt from the hparams.
        self.register_buffer("class_weights", class_weights(self.task, class_weight, class_counts), persistent=False)
        self._add_stage_metrics(2 if self.task is Task.BINARY else num_outputs)
        self._compiled = False
        self.init_from, self.freeze_epochs, self.ema = init_from, freeze_epochs, ema
        self.pixel_unit = pixel_unit
        # The outputs of each batch of the running epoch, by batch index (keep_outputs).
        self.epoch_outputs: dict[str, dict[int, StepOutputs]] = {s: {} for s in STAGES}
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])

    def _add_stage_metrics(self, num_classes: int) -> None:
        for stage in STAGES:  # attributes, not a dict keyed by stage: nn.Module already has .train
            setattr(self, f"{stage}_metrics", metrics.task_metrics(self.task, num_classes, stage))
            setattr(self, f"{stage}_loss", MeanMetric())

    @override
    def configure_model(self) -> None:
        # Lightning calls this at the start of fit/validate/test. Module.compile() compiles in
        # place, so parameter names, and with them checkpoints, stay as without compile.
        if self.compile_net and not self._compiled:
            self.net.compile()
            self._compiled = True

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @property
    def backbone(self) -> nn.Module | None:
        """The layers below the output layers, which model.freeze_epochs freezes first; None: none."""
        return None

    def load_start_weights(self, log_dir: str) -> None:
        """Load the weights training starts from, where settings name some (model.init_from: every
        matching tensor of another run's checkpoint; `log_dir` is where 'latest' looks)."""
        if self.init_from:
            init_from.load_matching(self, self.init_from, log_dir)

    @override
    def configure_callbacks(self) -> list[L.Callback]:
        # Lightning asks at every trainer call; evaluating or testing a checkpoint needs neither.
        return self.weight_callbacks() if self.trainer.state.fn == TrainerFn.FITTING else []

    def weight_callbacks(self) -> list[L.Callback]:
        """The callbacks of model.freeze_epochs and model.ema (litlab.weights); refuses their values."""
        freeze = freezing.freeze_callback(self.freeze_epochs, self.backbone is not None, self.full_batch_steps)
        return [c for c in (freeze, averaging.ema_callback(self.ema)) if c is not None]

    @property
    def full_batch_steps(self) -> bool:
        """Whether the optimizer is L-BFGS: one full-batch step per epoch, its closure evaluated
        several times, one parameter group."""
        return getattr(self.optimizer, "func", None) is LBFGS

    def settings_not_applying(self) -> set[str]:
        """Model settings that do nothing for this task and optimizer (the config line leaves them
        out): the regression loss for a classifier, class weights for regression, and the per-step
        options for L-BFGS, which takes one full-batch step per epoch."""
        unused = {"loss"} if self.task.is_classification else {"class_weight"}
        if self.full_batch_steps:
            unused |= {"steps_per_call", "compile", "cuda_graphs"}
        return unused

    def metric_names(self, stage: str) -> list[str]:
        """Every name logged for `stage` ('train', 'val' or 'test'), loss included."""
        return metrics.names(self.task, stage)

    def predict_outputs(self, out: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """Network output (B, K) -> class probabilities (B, C) or regression values (B,). `temperature`:
        another than the model's own, as a checkpoint holding it would predict (evaluate.py calibrate=true)."""
        t = self.temperature if temperature is None else temperature
        if self.task is Task.MULTICLASS:
            return (out / t).softmax(dim=1)
        if self.task is Task.BINARY:
            p = (out[:, 0] / t).sigmoid()
            return torch.stack([1 - p, p], dim=1)
        return out[:, 0] * self.target_std + self.target_mean  # back to the target's units

    def loss_and_output(self, batch: Batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and network output (B, num_outputs) of one batch; in training with the penalty."""
        x, y = batch  # y in the target's own units
        out = self(x)
        # With class weights, the mean over the batch of w[y_i] * loss_i: on the whole train split
        # scikit-learn's class_weight objective divided by n, so L-BFGS reaches its optimum.
        weight = self.class_weights[y] if self.class_weights is not None else None  # (B,)
        if self.task is Task.MULTICLASS:
            loss = tall.cross_entropy(out, y, weight)
        elif self.task is Task.BINARY:
            loss = F.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype), weight=weight)
        else:
            loss = REGRESSION_LOSSES[self.loss_name](out[:, 0], (y - self.target_mean) / self.target_std)
        if stage == "train" and (self.l1 or self.l2):
            loss = loss + self._penalty()
        return loss, out

    def step(self, batch: Batch, batch_idx: int, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """loss_and_output, with the outputs kept for the stage's epoch-end metrics."""
        loss, out = self.loss_and_output(batch, stage)
        self.keep_outputs(stage, batch_idx, (out.detach(), batch[1], loss.detach()))
        return loss, out

    def keep_outputs(self, stage: str, batch_idx: int, outputs: StepOutputs) -> None:
        """Keep a batch's outputs; torchmetrics digests them once per epoch (_log_epoch). On CPU a
        metric update (~0.5 ms) or a `self.log` call (~1 ms) costs more than a small model's whole
        step, and storing a tensor never waits for the device. Keyed by batch: L-BFGS evaluates its
        closure, and so the step, several times per batch; the last counts."""
        self.epoch_outputs[stage][batch_idx] = outputs

    @override
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, _ = self.step(batch, batch_idx, "train")
        self.check_and_log_step_loss(loss)
        return loss

    def check_and_log_step_loss(self, loss: torch.Tensor, to_loggers: bool = False) -> None:
        """On the steps the loggers write (log_every_n_steps): NaN check and train/loss_step. Not on
        the others: reading the loss waits for the device. `to_loggers`: write it to the loggers at
        this optimizer step ourselves; Lightning writes logged values only once per call."""
        every = getattr(self.trainer, "log_every_n_steps", 50)  # set on the Trainer by Lightning at init
        if (self.global_step + 1) % max(every, 1):
            return
        self._check_finite(loss)
        self.log(
            "train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True, logger=not to_loggers, batch_size=1
        )
        if to_loggers:
            for logger in self.loggers:
                logger.log_metrics({"train/loss_step": loss.item()}, step=self.global_step)

    @override
    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.step(batch, batch_idx, "val")

    @override
    def test_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        _, out = self.step(batch, batch_idx, "test")
        return {
            "preds": self.predict_outputs(out.detach()),
            "target": batch[1],
        }  # for callbacks (litlab.review.figures_callback.TestFigures)

    @override
    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        """Class probabilities (B, C) or values (B,) of a batch `(x, y)` or `x`."""
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self.predict_outputs(self(x))

    @override
    def on_train_epoch_start(self) -> None:
        self.epoch_outputs["train"].clear()

    @override
    def on_validation_epoch_start(self) -> None:
        self.epoch_outputs["val"].clear()

    @override
    def on_test_epoch_start(self) -> None:
        self.epoch_outputs["test"].clear()

    @override
    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    @override
    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    @override
    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def _log_epoch(self, stage: str) -> None:
        """Compute (synced across DDP ranks by torchmetrics), log and reset the stage's metrics."""
        loss_mean, collection = getattr(self, f"{stage}_loss"), getattr(self, f"{stage}_metrics")
        outputs = self.epoch_outputs[stage]
        if not outputs:  # a stage with no batches (limit_*_batches=0) has nothing to report
            return
        outs, targets, losses = zip(*outputs.values(), strict=True)
        collection.update(self.predict_outputs(torch.cat(outs)), torch.cat(targets))
        sizes = torch.tensor([len(t) for t in targets], dtype=torch.float32, device=losses[0].device)
        loss_mean.update(torch.stack(losses), sizes)  # the mean over samples, not over batches
        outputs.clear()
        values = {f"{stage}/loss": loss_mean.compute(), **collection.compute()}
        if stage == "train":
            self._check_finite(values["train/loss"])
        # Already synced by torchmetrics; sync_dist only averages equal values (and quiets a DDP warning).
        # batch_size: no weighting to infer, the values are whole-epoch ones (and under dataloader_iter
        # Lightning cannot see a batch to infer it from).
        self.log_dict(values, prog_bar=stage == "val", sync_dist=True, batch_size=1)
        loss_mean.reset()
        collection.reset()

    def _check_finite(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"train/loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}: "
                "training diverged. Lower optimizer.lr, or check the data for extreme values."
            )

    def _penalty(self) -> torch.Tensor | float:
        weights = [p for p in self.net.parameters() if p.ndim >= 2]  # weight matrices, not biases or BN
        l1 = sum(w.abs().sum() for w in weights) if self.l1 else 0.0
        l2 = sum(w.pow(2).sum() for w in weights) if self.l2 else 0.0
        return self.l1 * l1 + self.l2 * l2

    @override
    def configure_optimizers(self):
        if self.optimizer is None:
            raise RuntimeError("this module was built without an optimizer; pass optimizer= to train it")
        # Frozen layers (model.freeze_epochs) join as a parameter group of their own when they thaw.
        optimizer = self.optimizer([p for p in self.parameters() if p.requires_grad])
        if self.scheduler is None:
            return optimizer
        if getattr(self.scheduler, "func", None) is OneCycleLR:
            # One-cycle spans the whole run, whose length in steps is only known now.
            scheduler = self.scheduler(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        scheduler = self.scheduler(optimizer)
        # Plateau watches val/loss: it exists for every task and always wants to go down.
        config = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, ReduceLROnPlateau):
            config["monitor"] = "val/loss"
        return {"optimizer": optimizer, "lr_scheduler": config}

    @override
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # evaluate.py and predict.py rebuild model and data from the checkpoint alone.
        checkpoint[ENTRY] = entry(self, getattr(self.trainer, "datamodule", None))
