"""When full-batch training has converged, and whether val/loss was still improving at the end."""

import hashlib
import logging

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping
from typing_extensions import override

log = logging.getLogger(__name__)


class Convergence(EarlyStopping):
    """Stops full-batch training (one step an epoch) once it has converged, and says why it stopped.
    Does nothing for minibatch training, whose epoch losses are noisy.

    L-BFGS: converged when every entry of the gradient is at most the optimizer's `tolerance_grad`
    (L-BFGS's own first-order test) where an epoch's step ended (its last evaluation; the step
    then ends by that test) or where an epoch began (that step then returns at once). For a
    strictly convex loss whose Hessian is at least mu, the weights are then within
    ||gradient|| / mu of the optimum, whatever the float summation order did on the way; a change
    of the loss bounds nothing. An epoch that leaves the weights as they were stops the run too,
    with a warning: L-BFGS has stalled at this precision and is not converged.

    Other optimizers: the run stops once an epoch lowers train/loss by less than `min_delta`, which
    says that the loss stopped improving, not that it converged.
    A subclass of EarlyStopping so that Lightning calls it after the module has logged train/loss."""

    def __init__(self, min_delta: float = 1e-6) -> None:
        super().__init__(
            monitor="train/loss", min_delta=min_delta, patience=1, mode="min", check_on_train_epoch_end=True
        )
        self.active = False
        self.tolerance_grad: float | None = None  # L-BFGS's; None: another optimizer
        self.last_change: float | None = None
        self._last_loss: float | None = None
        # Where an epoch began (at its first closure): the largest gradient entry and a digest of the
        # weights; and the digest where the epoch before began.
        self.start_grad: float | None = None
        self.start_weights: str | None = None
        self.grad_epoch: int | None = None
        self.previous_start_weights: str | None = None
        # This epoch's closure evaluations; the gradient's largest entry and the weights' digest at the last one.
        self.evaluations = 0
        self.last_grad: float | None = None
        self.last_weights: str | None = None

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # full-batch training over more than one epoch (two epochs tell a change; fast_dev_run runs one)
        self.active = trainer.num_training_batches == 1 and trainer.max_epochs != 1
        lbfgs = [o for o in trainer.optimizers if isinstance(o, torch.optim.LBFGS)]
        self.tolerance_grad = float(lbfgs[0].param_groups[0]["tolerance_grad"]) if lbfgs else None
        if trainer.num_training_batches > 1 and lbfgs:
            log.warning(
                "L-BFGS on %d minibatches an epoch: each runs up to optimizer.max_iter iterations on its own "
                "batch; L-BFGS is a full-batch method, use data.batch_size=full",
                trainer.num_training_batches,
            )

    @override
    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        # Lightning calls this after every evaluation of L-BFGS's closure; the epoch's first is at
        # the weights the epoch began with, its last (as a rule) at the weights it ends with.
        if not self.active or self.tolerance_grad is None:
            return
        params = optimized(optimizer)
        grads = [p.grad.abs().max() for p in params if p.grad is not None]
        self.last_grad = float(torch.stack(grads).max()) if grads else 0.0
        # The weights are hashed only where a stop may need them: where an epoch begins, and at a
        # gradient within tolerance (the only last evaluation that could end the run).
        first = self.grad_epoch != trainer.current_epoch
        self.last_weights = digest(params) if first or self.last_grad <= self.tolerance_grad else None
        if first:
            self.grad_epoch, self.start_grad, self.evaluations = trainer.current_epoch, self.last_grad, 0
            self.start_weights = self.last_weights
        self.evaluations += 1

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loss = trainer.callback_metrics.get(self.monitor)
        if not self.active or loss is None:
            return
        if self._last_loss is not None:
            self.last_change = self._last_loss - float(loss)
        self._last_loss = float(loss)
        reason = self._lbfgs_stop(trainer) if self.tolerance_grad is not None else self._loss_stop(trainer)
        self.previous_start_weights = self.start_weights
        if reason is not None:
            self.stopped_epoch = trainer.current_epoch  # epochs count from 0, as "best epoch" does
            trainer.should_stop = True

    def _lbfgs_stop(self, trainer: L.Trainer) -> str | None:
        """Why L-BFGS stops after this epoch, logged; None: it goes on."""
        grad, tolerance, epoch = self.start_grad, self.tolerance_grad, trainer.current_epoch
        if grad is None or tolerance is None:
            return None
        if grad <= tolerance:
            log.info(
                "converged: epoch %d began with the gradient's largest entry %.2g <= optimizer.tolerance_grad %.2g "
                "(train/loss %.10g); training stops",
                epoch, grad, tolerance, self._last_loss,
            )  # fmt: skip
            return "converged"
        # The line search may end on a point it evaluated before its last: then the last gradient is not the end's.
        within = self.evaluations > 1 and self.last_grad is not None and self.last_grad <= tolerance
        if within and self.last_weights == digest(optimized(trainer.optimizers[0])):
            log.info(
                "converged: epoch %d's L-BFGS step ended after %d evaluations with the gradient's largest entry "
                "%.2g <= optimizer.tolerance_grad %.2g (train/loss %.10g); training stops",
                epoch, self.evaluations, self.last_grad, tolerance, self._last_loss,
            )  # fmt: skip
            return "converged"
        if self.start_weights == self.previous_start_weights:
            log.warning(
                "L-BFGS stalled, not converged: epoch %d left the weights as they were, with the gradient's "
                "largest entry %.2g above optimizer.tolerance_grad %.2g; training stops. Float32's rounding "
                "(trainer.precision) or a large optimizer.tolerance_change ends each step before it moves",
                epoch - 1, grad, tolerance,
            )  # fmt: skip
            return "stalled"
        return None

    def _loss_stop(self, trainer: L.Trainer) -> str | None:
        """Whether train/loss stopped improving (by min_delta) this epoch, logged; None: it goes on."""
        if self.last_change is None or self.last_change >= abs(self.min_delta):
            return None
        log.info(
            "train/loss stopped improving: epoch %d lowered it by only %.2g (< callbacks.convergence.min_delta "
            "%.2g) to %.6g; training stops",
            trainer.current_epoch, self.last_change, abs(self.min_delta), self._last_loss,
        )  # fmt: skip
        return "no improvement"

    @override
    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "last_loss": self._last_loss, "last_change": self.last_change, "start_grad": self.start_grad,
            "start_weights": self.start_weights, "grad_epoch": self.grad_epoch,
            "previous_start_weights": self.previous_start_weights,
        }  # fmt: skip

    @override
    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._last_loss, self.last_change = state_dict.get("last_loss"), state_dict.get("last_change")
        self.start_grad, self.grad_epoch = state_dict.get("start_grad"), state_dict.get("grad_epoch")
        self.start_weights = state_dict.get("start_weights")
        self.previous_start_weights = state_dict.get("previous_start_weights")

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.active or self.stopped_epoch or trainer.current_epoch < (trainer.max_epochs or 0):
            return
        if self.tolerance_grad is not None:
            where = (
                f"the last epoch began with the gradient's largest entry {self.start_grad:.2g} > "
                f"optimizer.tolerance_grad {self.tolerance_grad:.2g}"
                if self.start_grad is not None
                else "one epoch"
            )
            advice = "raise trainer.max_epochs, or optimizer.max_iter"
        else:
            change = f"{self.last_change:.2g}" if self.last_change is not None else None
            falling = f"the last epoch lowered it by {change}, " if change else ""
            where = f"{falling}callbacks.convergence.min_delta is {abs(self.min_delta):.2g}"
            advice = "raise trainer.max_epochs"
        log.warning(
            "train/loss had not converged when trainer.max_epochs=%d ended the run (%s): %s",
            trainer.max_epochs, where, advice,
        )  # fmt: skip


def optimized(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The weights `optimizer` steps."""
    return [p for group in optimizer.param_groups for p in group["params"]]


def digest(params: list[torch.Tensor]) -> str:
    """A digest of the weights' exact values: equal digests, unchanged weights."""
    h = hashlib.sha256()
    for p in params:
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class StillImproving(L.Callback):
    """At the end of fitting, says in one log line whether `metric` was still improving: its best
    value over the last `epochs` epochs beats the best before them by more than `min_rel_delta`."""

    def __init__(self, metric: str = "val/loss", epochs: int = 3, min_rel_delta: float = 1e-3) -> None:
        self.metric, self.epochs, self.min_rel_delta = metric, epochs, min_rel_delta
        self.history: list[float] = []

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.metric)
        if not trainer.sanity_checking and value is not None:
            self.history.append(float(value))

    @override
    def state_dict(self) -> dict:
        return {"history": self.history}

    @override
    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict.get("history", []))

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if len(self.history) <= self.epochs:
            return
        before, recent = min(self.history[: -self.epochs]), min(self.history[-self.epochs :])
        if before - recent > self.min_rel_delta * abs(before):
            log.warning(
                "%s was still improving at the end (%.6g in the last %d epochs, %.6g before): "
                "more epochs may help, raise trainer.max_epochs",
                self.metric,
                recent,
                self.epochs,
                before,
            )
