"""What a run prints: a compact config summary at the start, the network's layers, a progress
bar without Lightning's `v_num`, a closing summary with the answer, and none of the third-party
notices that do not apply to a litlab run."""

import contextlib
import logging
import re
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence

import lightning as L
import rich
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import ProcessingSpeedColumn
from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.progress import ProgressColumn, Task
from rich.style import Style
from rich.table import Table
from rich.text import Text
from typing_extensions import override

from litlab import compat
from litlab.files.run_record import RunRecord

GROUPS = ("data", "model", "optimizer", "scheduler", "trainer")
NOT_SHOWN = ("default_root_dir",)  # the run dir, shown once on its own line

# Third-party notices, silenced by message; every other warning stays visible.
NOISE_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # raised inside Lightning 2.6 on torch 2.14, not by us
    # train/loss_step is logged every log_every_n_steps; the epoch metrics are logged anyway
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"The `srun` command is available on your system but is not used",  # local runs on a SLURM node
    # model.steps_per_call > 1 pulls its own batches (litlab.speed.steps): tested there, not experimental to users
    r"Found `dataloader_iter` argument in the `training_step`",
    r"You are using the `dataloader_iter` step flavor",
    r"The lr scheduler dict contains the key\(s\) \['monitor'\], but the keys will be ignored",  # we step it with it
    # our batches do resume mid-epoch: SplitDataModule keeps their position in its own state
    r"You're resuming from a checkpoint that ended before the epoch ended",
    # logger=none: the metrics still reach the console, metrics.json and the checkpoints
    r"You called `self\.log\(.*\)` but have no logger configured",
    # called inside Lightning and torchmetrics when they gather across DDP ranks, not by us
    r"`torch\.distributed\.all_gather_into_tensor` is deprecated",
    # model.ema: litlab's configure_model only compiles (model.compile), it shards nothing
    r"You're using the WeightAveraging callback with a model that overrides the configure_model",
    # model.freeze_epochs: the frozen layers' BatchNorm trains throughout (BackboneFinetuning's train_bn), so it
    # is in the optimizer already when the rest thaws, and Lightning says it skips it
    r"The provided params to be frozen already exist within another group of this optimizer",
    r"torch\.distributed\.nn\.functional\.all_gather is deprecated",
)
LIGHTNING_INFO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
# Log lines silenced by their start, per logger: Lightning's adverts for litlogger and litmodels, and
# TensorBoard's reader passing from one event file to the next while the sweep summary reads them.
NOISE_LOGS = {
    **{name: ("💡 Tip:",) for name in LIGHTNING_INFO_LOGGERS},
    "tensorboard": ("Directory watcher advancing", "No path found after"),
}


class DropMessages(logging.Filter):
    """Drops log records whose message starts with one of `prefixes`."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


def quiet_third_party() -> None:
    """Silence NOISE_WARNINGS and NOISE_LOGS, and send Lightning's log lines to the run's own
    handlers (console and train.log, set up by Hydra) only: `import lightning` adds a console
    handler of its own, which printed each line a second time. A DDP rank other than 0 shows no
    warning: each rank would print the same ones, and rank 0 shows them once for the run."""
    if compat.global_rank() > 0:
        warnings.simplefilter("ignore")
    if logging.getLogger().hasHandlers():
        logging.getLogger("lightning").handlers.clear()
    for message in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name, prefixes in NOISE_LOGS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropMessages) for f in logger.filters):
            logger.addFilter(DropMessages(prefixes))


@contextlib.contextmanager
def quiet_checkpoint_loading() -> Iterator[None]:
    """Without Lightning's "Restoring states / Loaded model weights" lines (and on a GPU its
    "CUDA_VISIBLE_DEVICES" line, and the tuner's "`weights_only` was not set" as it saves the
    model before a range test), which the validation and test of the best checkpoint would
    print again at the end of every run."""
    names = (*LIGHTNING_INFO_LOGGERS, "lightning.pytorch.accelerators.cuda", "lightning.pytorch.trainer.connectors")
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def inline(node: object, hidden: Collection[str] = ()) -> str:
    """A group's settings on one line: `lr=0.001 weight_decay=0.0`, without `_target_`-style keys
    and without `hidden` ones."""
    if not isinstance(node, DictConfig):
        return "" if node is None else str(node)
    values = OmegaConf.to_container(node, resolve=True)
    assert isinstance(values, dict)
    shown = {k: v for k, v in values.items() if not str(k).startswith("_") and k not in (*NOT_SHOWN, *hidden)}
    return " ".join(f"{k!s}={v}" for k, v in shown.items() if not isinstance(v, dict))


def print_lines(rows: Sequence[tuple[str, str | Text]]) -> None:
    """`name  value` lines, unwrapped whatever the terminal width: paths and commands stay whole.
    A value is shown as it is, never read as rich markup: `logger=[tensorboard,mlflow]` stays whole."""
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        line = Text.assemble((f"{name:<{width}}", "bold"), "  ", value)
        rich.get_console().print(line, soft_wrap=True, highlight=False)


def print_config_summary(cfg: DictConfig, config_file: str, hidden: Mapping[str, Collection[str]]) -> None:
    """One line per group (its option and settings, less `hidden[group]`: those that do not apply),
    the overrides, and where the full config is."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    rows: list[tuple[str, str | Text]] = [
        (group, Text.assemble((choices.get(group) or "", "cyan"), f" {inline(cfg.get(group), hidden.get(group, ()))}"))
        for group in GROUPS
    ]
    if choices.get("experiment"):
        rows.append(("experiment", str(choices["experiment"])))
    overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else ListConfig([])
    rows += [("overrides", " ".join(overrides) or "none"), ("config", f"{config_file} (all of it, resolved)")]
    print_lines(rows)


class Speed(ProgressColumn):
    """Batches per second, left blank until there is a speed to show (a full-batch epoch is one
    batch: Lightning's own column showed 0.00it/s)."""

    def __init__(self, style: str | Style) -> None:
        super().__init__()
        self.style = style

    @override
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f}it/s" if speed else "", style=self.style)


class ProgressBar(RichProgressBar):
    """Lightning's rich progress bar without `v_num` (the logger's version: our run name), and
    with a speed column that is blank rather than 0.00it/s."""

    @override
    def configure_columns(self, trainer: L.Trainer) -> list:
        columns = [c for c in super().configure_columns(trainer) if not isinstance(c, ProcessingSpeedColumn)]
        return [*columns, Speed(style=self.theme.processing_speed)]

    @override
    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float | dict]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class NetSummary(L.Callback):
    """At the start of fit: the network's layers (`pl_module.net`) and their parameter counts.
    Lightning's own summary lists the metric modules too, with 0 parameters each."""

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        net = getattr(pl_module, "net", pl_module)
        if not trainer.is_global_zero:
            return
        total = sum(p.numel() for p in net.parameters())
        table = Table(title=f"{type(pl_module).__name__}: {total:,} parameters", title_justify="left")
        table.add_column("layer")
        table.add_column("type")
        table.add_column("params", justify="right")
        for name, module in net.named_modules():
            if name and not any(module.children()):  # the leaves: Linear, Conv2d, ReLU...
                table.add_row(name, repr(module), f"{sum(p.numel() for p in module.parameters()):,}")
        rich.print(table)


def print_result(record: RunRecord, run_dir: str, tensorboard_dir: str | None) -> None:
    """The run's answer, last on the console: test metrics (or where the trial was pruned), best
    epoch, where everything is."""
    best = record.best_checkpoint_name
    found = re.search(r"epoch[_=](\d+)", best) if best else None
    epoch = str(int(found.group(1))) if found else best or "none (final weights)"
    rows = [(name, f"{value:.4f}") for name, value in (record.test or {}).items()]
    if record.status == "pruned":  # an Optuna trial stopped by its pruner: not tested
        monitor = str(record.monitor)
        rows.append(("pruned", f"at epoch {record.pruned_at_epoch}, {monitor}={(record.val or {})[monitor]:.4f}"))
    rows += [("best epoch", epoch), ("run dir", run_dir)]
    if tensorboard_dir:
        rows.append(("tensorboard", f"tensorboard --logdir {tensorboard_dir}"))
    print_lines(rows)
