"""`model.cuda_graphs`: the training step (forward, loss, backward, optimizer step) captured once as a
CUDA graph and replayed for every full batch.

A small model's step on a GPU is a few hundred kernels of microseconds each, and launching them one
by one from Python takes longer than running them; a graph launches them all at once. What a graph
needs, and how it is met here (PyTorch's "CUDA Graphs" notes, whole-network capture):
- fixed shapes and addresses: each batch is copied into input buffers the graph reads. A batch of
  another size, the epoch's last partial one, runs eagerly with the same parameters and optimizer
  state, so no sample is dropped; a batch of another sample shape is refused (dynamic shapes).
  Batches reach the step on the GPU whether the data lives there (data.device=auto) or not.
- an optimizer that steps without reading its state back to the CPU: Adam or AdamW with
  `capturable=True`, set on its param groups. The graph reads the learning rate from a tensor that
  is refilled before each replay when a scheduler changed the group's value, so every learning-rate
  scheduler acts on the graph. Betas are baked in: one-cycle's momentum cycling is refused.
- a few eager steps on a side stream before capture (lazily made state: Adam's moments, cuDNN's
  algorithm choices), real steps on real batches; gradients set to None before capture, so that
  backward makes them in the graph's memory; autocast's weight cache off for the captured forward.
- a rebuild when the optimizer's state is loaded (a resume replaces its tensors, which the graph
  would go on reading) or the optimizer is replaced (a new `trainer.fit`).
"""

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch.optim import LBFGS, Adam, Optimizer
from torch.optim.lr_scheduler import CyclicLR, OneCycleLR

from litlab.errors import UserError
from litlab.models.base import Batch, SupervisedModule

WARMUP_STEPS = 3  # eager steps before each capture, as in PyTorch's whole-network example


def check_settings(optimizer: Any, scheduler: Any) -> None:
    """One UserError, when the model is built, for an optimizer or scheduler a graph cannot step."""
    func = getattr(optimizer, "func", None)
    if func is LBFGS:
        raise UserError(
            "model.cuda_graphs=true does not apply to L-BFGS, whose line search reads the loss on the CPU "
            "many times per step: leave model.cuda_graphs=false"
        )
    if optimizer is not None and not (isinstance(func, type) and issubclass(func, Adam)):
        raise UserError(
            f"model.cuda_graphs=true needs optimizer=adam or adamw, which step on the GPU inside a graph "
            f"(capturable=True); {getattr(func, '__name__', func)} does not: use optimizer=adam, "
            "or leave model.cuda_graphs=false"
        )
    keywords = getattr(scheduler, "keywords", {})
    cycles = getattr(scheduler, "func", None) in (OneCycleLR, CyclicLR) and keywords.get("cycle_momentum", True)
    if cycles:
        raise UserError(
            "model.cuda_graphs=true cannot follow the scheduler's momentum cycling (Adam's beta1 changes every "
            "step, and the captured step keeps the first): set scheduler.cycle_momentum=false"
        )


def check_trainer(trainer: L.Trainer) -> None:
    """One UserError, before the first step, for a Trainer a captured step cannot run in."""
    device = trainer.strategy.root_device
    if device.type != "cuda":
        raise UserError(
            f"model.cuda_graphs=true needs a CUDA GPU, but this run trains on {device}: "
            "use trainer=gpu, or leave model.cuda_graphs=false"
        )
    if not isinstance(trainer.strategy, SingleDeviceStrategy) or trainer.world_size > 1:
        raise UserError(
            f"model.cuda_graphs=true runs on one GPU; this run has {trainer.world_size} processes "
            f"({type(trainer.strategy).__name__}): use trainer.devices=1, or leave model.cuda_graphs=false"
        )
    if getattr(trainer.precision_plugin, "scaler", None) is not None:
        raise UserError(
            f"model.cuda_graphs=true cannot run trainer.precision={trainer.precision}: its gradient scaler "
            "checks every step for inf on the CPU; use trainer.precision=bf16-mixed or 32-true"
        )


@contextmanager
def uncached_autocast() -> Iterator[None]:
    """The autocast Lightning's precision set, without its weight cache, which PyTorch requires off
    while capturing (the graph must cast the weights each replay, not reuse a cast made before).
    Lightning's bf16-mixed turns it off itself (2.6); this does not rely on that."""
    enabled, dtype = torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")
    with torch.autocast("cuda", dtype=dtype, enabled=enabled, cache_enabled=False):
        yield


def make_capturable(optimizer: Optimizer) -> None:
    """capturable=True on every group, each step counter on its parameter's device (a state loaded
    from a run without graphs keeps Adam's step counters on the CPU)."""
    for group in optimizer.param_groups:
        group["capturable"] = True
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if isinstance(state.get("step"), torch.Tensor) and state["step"].device != p.device:
                state["step"] = state["step"].to(p.device)


def capture(step: Callable[[], None]) -> Callable[[], None]:
    """`step` recorded as a CUDA graph (recorded, not run); returns the graph's replay. Every
    tensor `step` makes keeps its address, and each replay writes into it again."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


@contextmanager
def side_stream() -> Iterator[None]:
    """Work on a new stream that starts after, and is waited for by, the current one: PyTorch's
    warm-up steps before a capture run there."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        yield
    torch.cuda.current_stream().wait_stream(side)


@contextmanager
def lrs_read_from(optimizer: Optimizer, tensors: list[torch.Tensor]) -> Iterator[None]:
    """The groups' learning rates as `tensors` while the step is captured, so that the graph reads
    them from there; plain floats again after, for schedulers, checkpoints and the loggers."""
    floats = [group["lr"] for group in optimizer.param_groups]
    try:
        for group, lr in zip(optimizer.param_groups, tensors, strict=True):
            group["lr"] = lr
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, floats, strict=True):
            group["lr"] = lr


class CapturedStep:
    """Optimizer steps on full batches as replays of one captured graph (see the module's docstring)."""

    def __init__(self) -> None:
        self.graph: Callable[[], None] | None = None  # the captured step's replay
        self.optimizer: Optimizer | None = None  # the optimizer the graph steps
        self.warm_steps = 0  # eager steps on full batches since the last (re)build
        self.rows = 0  # the largest batch seen: the size a graph is captured at
        self.replays = 0  # steps taken by replaying (the tests read it)
        self._static: dict[str, torch.Tensor] = {}  # x, y in; out, loss out
        self._lrs: list[torch.Tensor] = []  # the learning rates the graph reads, one per group
        self._lr_values: list[float] = []  # what they hold

    def reset(self, *_: Any) -> None:
        """Drop the graph; it is captured again, after new warm-up steps. Also a load_state_dict hook."""
        self.graph, self._static, self.warm_steps = None, {}, 0

    def step(self, module: SupervisedModule, optimizer: Optimizer, batch: Batch, batch_idx: int) -> torch.Tensor:
        """One optimizer step of `module` on `batch`; its loss."""
        if optimizer is not self.optimizer:
            self.optimizer, self.rows = optimizer, 0
            optimizer.register_load_state_dict_post_hook(self.reset)
            self.reset()
        x, y = batch
        self.rows = max(self.rows, len(x))
        if self.graph is not None:
            if x.shape[1:] != self._static["x"].shape[1:] or x.dtype != self._static["x"].dtype:
                raise UserError(
                    f"model.cuda_graphs=true needs batches of one sample shape; got {tuple(x.shape[1:])} after "
                    f"{tuple(self._static['x'].shape[1:])}: leave model.cuda_graphs=false for this data"
                )
            if len(x) == len(self._static["x"]):
                return self._replay(module, batch, batch_idx)
            return self._eager(module, optimizer, batch, batch_idx)  # the last, partial batch
        if len(x) < self.rows:
            return self._eager(module, optimizer, batch, batch_idx)
        if self.warm_steps < WARMUP_STEPS:
            self.warm_steps += 1
            return self._warm_up(module, optimizer, batch, batch_idx)
        self._capture(module, optimizer, batch)
        return self._replay(module, batch, batch_idx)  # capturing only records: the replay steps

    def _train_step(
        self, module: SupervisedModule, optimizer: Optimizer, batch: Batch, batch_idx: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, loss, backward and optimizer step, as the graph captures them; the loss and the
        network's output. `batch_idx` None: the outputs are not kept for the epoch's metrics (the
        captured step's: each replay keeps copies)."""
        with uncached_autocast():
            if batch_idx is None:
                loss, out = module.loss_and_output(batch, "train")
            else:
                loss, out = module.step(batch, batch_idx, "train")
        loss.backward()
        with warnings.catch_warnings():  # torch warns that a capturable optimizer steps outside a graph
            warnings.filterwarnings("ignore", message=".*capturable=True.*")
            optimizer.step()
        return loss, out

    def _eager(self, module: SupervisedModule, optimizer: Optimizer, batch: Batch, batch_idx: int) -> torch.Tensor:
        """A step outside the graph. Before a capture gradients are set to None; after it they are the
        graph's own tensors, zeroed in place, which backward then adds to."""
        make_capturable(optimizer)
        optimizer.zero_grad(set_to_none=self.graph is None)
        return self._train_step(module, optimizer, batch, batch_idx)[0].detach()

    def _warm_up(self, module: SupervisedModule, optimizer: Optimizer, batch: Batch, batch_idx: int) -> torch.Tensor:
        """An eager step on a side stream, as PyTorch asks before a capture."""
        with side_stream():
            return self._eager(module, optimizer, batch, batch_idx)

    def _capture(self, module: SupervisedModule, optimizer: Optimizer, batch: Batch) -> None:
        """Record the step on copies of `batch` (the graph's input buffers); _replay then takes it."""
        x, y = batch
        static = {"x": x.clone(), "y": y.clone()}
        self._lr_values = [float(g["lr"]) for g in optimizer.param_groups]
        self._lrs = [torch.tensor(v, dtype=torch.float32, device=x.device) for v in self._lr_values]

        def train_step() -> None:
            # Gradients None while capturing: backward then makes them in the graph's memory and each
            # replay writes them afresh (plain Python: recorded as nothing, run once, at the capture).
            optimizer.zero_grad(set_to_none=True)
            loss, out = self._train_step(module, optimizer, (static["x"], static["y"]), None)
            static["loss"], static["out"] = loss.detach(), out.detach()  # _replay keeps copies

        with lrs_read_from(optimizer, self._lrs):
            self.graph = capture(train_step)
        self._static = static

    def _replay(self, module: SupervisedModule, batch: Batch, batch_idx: int) -> torch.Tensor:
        """Copy the batch in, refresh the learning rates a scheduler changed, replay; the loss and the
        outputs kept for the epoch's metrics are copies, which the next replay does not overwrite."""
        assert self.graph is not None and self.optimizer is not None
        x, y = batch
        self._static["x"].copy_(x)
        self._static["y"].copy_(y)
        for i, group in enumerate(self.optimizer.param_groups):
            if float(group["lr"]) != self._lr_values[i]:
                self._lr_values[i] = float(group["lr"])
                self._lrs[i].fill_(self._lr_values[i])
        self.graph()
        self.replays += 1
        loss = self._static["loss"].clone()
        module.keep_outputs("train", batch_idx, (self._static["out"].clone(), y, loss))
        return loss
