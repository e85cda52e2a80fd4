"""`model.steps_per_call`: K optimizer steps over K consecutive batches in one Lightning training step.

Lightning spends ~0.4 ms of hooks and bookkeeping per training step on CPU, more than a small
model's own step. With K > 1 the module's training_step takes Lightning's `dataloader_iter`,
pulls up to K batches itself and steps the optimizer itself (manual optimization), so that cost
is paid once per K steps. Per batch it does what Lightning does at K=1: the same batches in the
same order, an optimizer step each, step-interval schedulers stepped after each, global_step
counted per optimizer step. On one device without a gradient scaler the first K-1 steps use the
bare torch optimizer and only the last goes through Lightning's wrapper, so hooks around
backward and the optimizer step (on_before_backward, on_after_backward, on_before_optimizer_step)
run once per call. Elsewhere (DDP, 16-mixed) every step goes through Lightning's wrapper.
With model.cuda_graphs=true (K=1 too) every step is a captured step (litlab.speed.cuda_graphs) and
none goes through the wrapper: its optimizer step is inside the graph.
"""

import copy
import logging
import math
import time
from collections.abc import Iterator

import lightning as L
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch.optim.lr_scheduler import ReduceLROnPlateau

from litlab.compat import batches_used_up, count_logged_steps, count_optimizer_steps
from litlab.errors import UserError
from litlab.models.base import Batch, SupervisedModule
from litlab.speed.cuda_graphs import CapturedStep
from litlab.values import is_int
from litlab.weights import averaging

log = logging.getLogger(__name__)

AUTO = "auto"
MAX_AUTO = 64
# Lightning's own cost per training step on CPU (hooks, progress, logging): 0.4 ms on 2 cores
# (docs/speed.md: an 8-unit MLP, K=1 against the plain loop). `auto` keeps it under 5% of a
# call. A fixed figure: on a slower CPU the cost is larger, and there `auto` picks a smaller K
# than that 5% asks for.
LIGHTNING_CALL_S, OVERHEAD_SHARE = 0.4e-3, 0.05


def parse(value: object) -> int | None:
    """`model.steps_per_call` as an int, or None for auto."""
    if value == AUTO:
        return None
    if is_int(value) and value >= 1:
        return value
    raise UserError(
        f"model.steps_per_call={value!r} is invalid: give an integer >= 1 (1 = one optimizer step per "
        "Lightning step, the default) or auto"
    )


def check_trainer(trainer: L.Trainer) -> None:
    """One UserError, before training, for a Trainer option that needs automatic optimization, which
    model.steps_per_call > 1 and model.cuda_graphs=true both replace."""
    manual = "model.steps_per_call=1 and model.cuda_graphs=false"
    if trainer.gradient_clip_val:
        raise UserError(
            f"trainer.gradient_clip_val={trainer.gradient_clip_val} needs {manual}: Lightning "
            "clips gradients only when it steps the optimizer itself"
        )
    if trainer.accumulate_grad_batches != 1:
        raise UserError(
            f"trainer.accumulate_grad_batches={trainer.accumulate_grad_batches} needs {manual}; "
            "for larger steps raise data.batch_size instead"
        )
    if trainer.val_check_interval != 1.0:
        raise UserError(
            f"trainer.val_check_interval={trainer.val_check_interval} counts Lightning steps, K batches each "
            f"with model.steps_per_call > 1: validate once per epoch (val_check_interval=1.0), or set {manual}"
        )


def choose_k(step_s: float) -> int:
    """The smallest power of two K at which Lightning's per-call cost is <= 5% of K steps of `step_s`."""
    k = 1
    while k < MAX_AUTO and OVERHEAD_SHARE * k * step_s < LIGHTNING_CALL_S:
        k *= 2
    return k


class StepsPerCall:
    """Runs one call of up to `k` optimizer steps (k=None: auto, decided on the first call); with
    `cuda_graphs`, each step on a full batch is a replay of a captured graph (litlab.speed.cuda_graphs)."""

    def __init__(self, k: int | None, cuda_graphs: bool = False) -> None:
        self.k = k
        self._direct: bool | None = None  # whether the bare optimizer may step (decided on the first call)
        self.captured = CapturedStep() if cuda_graphs else None

    def run(self, module: SupervisedModule, batches: Iterator) -> None:
        """One call of `module`'s training step; `batches` is Lightning's dataloader_iter."""
        trainer = module.trainer
        if self._direct is None:
            self._direct = direct_steps_allowed(trainer)
        wrapped = module.optimizers()
        assert isinstance(wrapped, LightningOptimizer)  # litlab's modules configure one optimizer
        schedulers = [c.scheduler for c in trainer.lr_scheduler_configs if c.interval == "step"]
        convert = trainer.precision_plugin.convert_input  # e.g. bf16-true: float inputs to bf16
        left = trainer.max_steps - trainer.global_step if trainer.max_steps >= 0 else math.inf
        taken = 0
        while taken < min(self.k or MAX_AUTO, left) and not batches_used_up(batches):
            try:
                batch, batch_idx, _ = next(batches)
            except StopIteration:  # a pass resumed mid-epoch is shorter than the loader's length
                break
            batch = convert(batch)
            if self.k is None:
                self.k = self._choose(module, batch)
            taken += 1
            last = taken >= min(self.k, left) or batches_used_up(batches)
            self._step(module, wrapped, batch, batch_idx, last)
            averaging.after_optimizer_step(trainer, module)  # model.ema: every step, as at K=1
            for scheduler in schedulers:
                scheduler.step()
        count_logged_steps(trainer, max(taken - 1, 0))  # Lightning counts one per call itself

    def _step(
        self, module: SupervisedModule, wrapped: LightningOptimizer, batch: Batch, batch_idx: int, last: bool
    ) -> None:
        """One optimizer step on `batch`: with the bare optimizer where allowed, except the call's
        `last`, which goes through Lightning's wrapper (precision, strategy (DDP), hooks); a captured
        step never does, its optimizer step being inside the graph."""
        if self.captured is not None:
            loss = self.captured.step(module, wrapped.optimizer, batch, batch_idx)
            module.check_and_log_step_loss(loss, to_loggers=True)
            count_optimizer_steps(module.trainer, 1)
            return
        loss, _ = module.step(batch, batch_idx, "train")
        module.check_and_log_step_loss(loss, to_loggers=True)
        if self._direct and not last:
            loss.backward()
            wrapped.optimizer.step()
            wrapped.optimizer.zero_grad()
            count_optimizer_steps(module.trainer, 1)
        else:
            module.manual_backward(loss)
            wrapped.step()
            wrapped.zero_grad()

    def _choose(self, module: SupervisedModule, batch: Batch) -> int:
        """Time forward and backward of a copy of the network on `batch` and pick K. A copy, with
        the random generators put back after, so that the run trains as it would at that K."""
        net, x = copy.deepcopy(module.net), batch[0]
        times = []
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            for _ in range(5):
                start = time.perf_counter()
                net(x).float().sum().backward()
                if x.device.type == "cuda":
                    torch.cuda.synchronize(x.device)
                times.append(time.perf_counter() - start)
        step_s = sorted(times)[2]  # the median of 5
        # Every rank must take the same K: DDP's collectives (a gradient all-reduce per step,
        # Lightning's per-call ones) pair up only if all ranks step alike. Rank 0's choice wins.
        k = module.trainer.strategy.broadcast(choose_k(step_s), src=0)
        log.info(
            "model.steps_per_call=auto: %d (a forward and backward take %.2f ms; Lightning adds ~%.1f ms per call)",
            k,
            step_s * 1e3,
            LIGHTNING_CALL_S * 1e3,
        )
        return k


def direct_steps_allowed(trainer: L.Trainer) -> bool:
    """The bare optimizer steps like Lightning's wrapper when one process trains (no DDP reducer to
    prepare per backward) and the precision plugin neither scales the loss nor steps differently."""
    plugin = trainer.precision_plugin
    plain = type(plugin) is Precision or (isinstance(plugin, MixedPrecision) and plugin.scaler is None)
    return plain and isinstance(trainer.strategy, SingleDeviceStrategy)


def step_epoch_schedulers(trainer: L.Trainer) -> None:
    """What Lightning does at the end of a training epoch under automatic optimization: step the
    epoch-interval schedulers, a plateau scheduler with its monitored value (once it exists)."""
    for config in trainer.lr_scheduler_configs:
        if config.interval != "epoch" or (trainer.current_epoch + 1) % config.frequency:
            continue
        if isinstance(config.scheduler, ReduceLROnPlateau):
            value = trainer.callback_metrics.get(config.monitor or "")
            if value is not None and math.isfinite(float(value)):
                config.scheduler.step(float(value))
        else:
            config.scheduler.step()
