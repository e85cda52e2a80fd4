"""`litlab train tune=lr_find`: the learning-rate range test before training.

Lightning's Tuner runs the test: the rate grows exponentially from `min_lr` to `max_lr` over
`num_training` steps of the composed model and data, recording the loss (stopping once it passes
4x its best). litlab.run.lr_curve reads the suggestions off that curve against log10(lr).
The run dir gets lr_find.png and lr_find.json, TensorBoard the figure; the console the override
to train with. With `tune.apply=true` the run then trains as `litlab train ...
optimizer.lr=<suggestion>` would (one-cycle's `max_lr` follows `optimizer.lr`): model and data
are built again from the same seed, so the range test leaves no trace in the training.
"""

import contextlib
import copy
import io
import logging
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch.tuner import Tuner
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.utils.tensorboard import SummaryWriter

from litlab import files
from litlab.checkpoints.io import WholeCheckpointIO
from litlab.compat import range_test_losses
from litlab.errors import UserError
from litlab.files.run_record import RunRecord
from litlab.hydra_job import job_overrides
from litlab.review.console import quiet_checkpoint_loading
from litlab.run.build import build, build_datamodule, build_model
from litlab.run.lr_curve import SUGGESTIONS, figure, suggest
from litlab.values import is_int, is_number

log = logging.getLogger(__name__)

PICTURE, RECORD = "lr_find.png", "lr_find.json"


class RangeTest:
    """The `tune=lr_find` settings: rates from `min_lr` to `max_lr` over `num_training` steps;
    `suggestion` (valley, steep or minimum) is the one printed as the override and, with
    `apply=true`, trained with."""

    def __init__(
        self,
        min_lr: float = 1e-6,
        max_lr: float = 1.0,
        num_training: int = 100,
        suggestion: str = "steep",
        apply: bool = False,
    ) -> None:
        for name, rate in (("min_lr", min_lr), ("max_lr", max_lr)):
            if not is_number(rate) or not math.isfinite(rate):
                raise UserError(f"tune.{name}={rate!r} is invalid: give a finite positive rate, e.g. tune.{name}=0.1")
        if not 0 < min_lr < max_lr:
            raise UserError(f"tune.min_lr={min_lr} and tune.max_lr={max_lr}: give 0 < min_lr < max_lr, e.g. 1e-6 and 1")
        if not is_int(num_training) or num_training < 10:
            raise UserError(
                f"tune.num_training={num_training!r}: give a whole number of steps, at least 10 (100 is usual)"
            )
        if suggestion not in SUGGESTIONS:
            raise UserError(f"tune.suggestion={suggestion!r} is invalid: choose one of {', '.join(SUGGESTIONS)}")
        self.min_lr, self.max_lr, self.num_training = min_lr, max_lr, num_training
        self.suggestion, self.apply = suggestion, apply


@dataclass(frozen=True)
class Found:
    """The range test's outcome: the chosen rate (2 significant figures) and the whole record."""

    lr: float
    record: dict


def search_cfg(cfg: DictConfig) -> DictConfig:
    """The run's config for the range test: one optimizer step per Lightning call (the tuner
    reads each step's loss), no compilation, no CUDA graph, no scheduler (the tuner brings its own)."""
    searched = copy.deepcopy(cfg)
    with open_dict(searched):
        searched.model.steps_per_call, searched.model.compile, searched.scheduler = 1, False, None
        searched.model.cuda_graphs = False  # the tuner swaps the optimizer's rate every step
    return searched


def range_test(cfg: DictConfig, test: RangeTest) -> tuple[np.ndarray, np.ndarray]:
    """The rates (N,) and each step's loss (N,) in Lightning's range test on the composed model and data."""
    if instantiate(cfg.optimizer).func is torch.optim.LBFGS:
        raise UserError(
            "tune=lr_find: L-BFGS searches its own step length (a line search on the whole train split); "
            "the range test is for minibatch optimizers, e.g. optimizer=adam or optimizer=sgd"
        )
    searched = search_cfg(cfg)
    datamodule = build_datamodule(searched)
    model = build_model(searched, datamodule)
    trainer = build(searched.trainer, "trainer", logger=False, callbacks=[], enable_checkpointing=False,
                    enable_model_summary=False, max_epochs=-1, plugins=[WholeCheckpointIO()])  # fmt: skip
    with quiet_checkpoint_loading(), bar_off_a_terminal():  # the tuner restores its own checkpoint afterwards
        found = Tuner(trainer).lr_find(model, datamodule=datamodule, min_lr=test.min_lr, max_lr=test.max_lr,
                                       num_training=test.num_training, update_attr=False)  # fmt: skip
    if found is None:
        raise UserError("tune=lr_find does not run under trainer.fast_dev_run; drop debug=fast_dev_run")
    losses = range_test_losses(found.results["loss"])
    return np.asarray(found.results["lr"], dtype=float), np.asarray(losses, dtype=float)


BAR = "Finding best initial lr"  # Lightning's tuner's tqdm bar, redrawn after every step


@contextlib.contextmanager
def bar_off_a_terminal() -> Iterator[None]:
    """Off a terminal (a log file, a SLURM job's output) the tuner's bar would be one line of
    thousands of characters: it is left out there; whatever else reached stderr is written after."""
    if sys.stderr.isatty():
        yield
        return
    caught = io.StringIO()
    try:
        with contextlib.redirect_stderr(caught):
            yield
    finally:
        kept = [line for line in caught.getvalue().replace("\r", "\n").splitlines() if line.strip() and BAR not in line]
        if kept:
            print("\n".join(kept), file=sys.stderr)


def find_learning_rate(cfg: DictConfig, test: RangeTest, output_dir: Path) -> Found:
    """The range test, its picture and record in `output_dir`, and the lines on the console."""
    lrs, loss = range_test(cfg, test)
    try:
        suggestions, smooth = suggest(lrs, loss)
    except ValueError as e:
        raise UserError(f"tune=lr_find: {e}; raise tune.num_training or tune.max_lr") from None
    by_name = suggestions.by_name()
    lr = float(f"{by_name[test.suggestion]:.2g}")
    override = f"optimizer.lr={lr:g}"
    record = {"lr": lrs.tolist(), "loss": loss.tolist(), "smoothed": smooth.tolist(), "suggestions": by_name,
              "suggestion": test.suggestion, "override": override, "picture": str(output_dir / PICTURE)}  # fmt: skip
    fig = figure(lrs, loss, smooth, suggestions, test.suggestion)
    files.write_with(output_dir / PICTURE, lambda path: fig.savefig(path, format="png"))
    files.write_json(output_dir / RECORD, record)
    if "tensorboard" in (cfg.get("logger") or {}):
        with SummaryWriter(log_dir=str(output_dir / "lr_find")) as writer:
            writer.add_figure("tune/lr_find", fig, global_step=0)
    report(lrs, by_name, test, override, output_dir)
    return Found(lr=lr, record=record)


def report(lrs: np.ndarray, by_name: dict[str, float], test: RangeTest, override: str, output_dir: Path) -> None:
    log.info("lr_find: %d steps, rates %.2g to %.2g; the curve: %s", len(lrs), lrs[0], lrs[-1], output_dir / PICTURE)
    rates = ", ".join(f"{name} {lr:.2g}" for name, lr in by_name.items())
    log.info("lr_find: %s (using %s)", rates, test.suggestion)
    if test.apply:
        log.info("lr_find: training with %s (tune.apply=true)", override)
    else:
        command = " ".join(o for o in job_overrides() if not o.lstrip("+~").startswith("tune"))
        log.info("lr_find: to train with it: litlab train %s", f"{command} {override}".strip())


def record_search(cfg: DictConfig, found: Found, output_dir: Path, seconds: float) -> RunRecord:
    """A run that only searched (tune.apply=false): config.yaml and its record, no training."""
    files.write_with(output_dir / "config.yaml", lambda path: OmegaConf.save(cfg, path, resolve=True))
    summary = {k: found.record[k] for k in ("suggestions", "suggestion", "override")}
    record = RunRecord("completed", lr_find=summary, val={}, test={}, wall_time_s=round(seconds, 3),
                       overrides=job_overrides())  # fmt: skip
    record.write(output_dir)
    return record


def search_first(cfg: DictConfig, output_dir: Path, start: float) -> RunRecord | None:
    """Run the range test if `cfg.tune` asks for it. Without tune.apply the search is the run:
    its record is returned and nothing trains. With tune.apply=true `optimizer.lr`
    in `cfg` is set to the suggestion and everything seeded again, so that training starts as a
    run with that rate would; None then, as without tune."""
    if not cfg.get("tune"):
        return None
    if cfg.get("ckpt_path"):
        raise UserError("tune=lr_find starts a new run; it cannot resume ckpt_path=...: drop one of them")
    test: RangeTest = build(cfg.tune, "tune")
    found = find_learning_rate(cfg, test, output_dir)
    if not test.apply:
        return record_search(cfg, found, output_dir, time.perf_counter() - start)
    cfg.optimizer.lr = found.lr
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    return None
