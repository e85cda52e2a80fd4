"""Data, model, callbacks, loggers and Trainer from a composed config: each group's classes are
instantiated with their values; a value litlab's own checks refuse, an unknown key, or a value an
upstream class refuses (the Trainer, a torch optimizer) is one line naming the group."""

import logging
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ProgressBar
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig

from litlab.arguments import accepted_keys
from litlab.checkpoints.io import WholeCheckpointIO
from litlab.compat import NoProfiler
from litlab.data import SplitDataModule
from litlab.data_spec import DataSpec, InputKind
from litlab.errors import UserError
from litlab.models import SupervisedModule
from litlab.models.metrics import resolve_monitor
from litlab.review.console import NetSummary
from litlab.speed import training_class
from litlab.values import is_int

log = logging.getLogger(__name__)


def build(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """hydra.utils.instantiate of group `key`, raising the class's own UserError (which names the
    bad value) instead of Hydra's wrapper around it. An unknown key is a UserError listing the valid
    ones. A TypeError or ValueError of an upstream class (the Trainer, a torch optimizer), or a
    Lightning MisconfigurationException, is the user's value too; from a litlab class it is a bug
    in litlab, and keeps its traceback."""
    check_keys(node, key, kwargs)
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        upstream = not str(node.get("_target_", "")).startswith("litlab.")
        if isinstance(cause, MisconfigurationException) or (upstream and isinstance(cause, TypeError | ValueError)):
            raise UserError(
                f"{key}: {cause}; check the {key}.* values (python train.py --cfg job shows them)"
            ) from None
        if cause is not None:
            raise cause from e
        raise


def check_keys(node: DictConfig, key: str, given: dict[str, Any]) -> None:
    """Every key of `node` (and every argument in `given`) is one its class takes."""
    cls = get_class(node._target_)
    accepted = accepted_keys(cls)
    if accepted is None:
        return  # the class passes any extra key on (an upstream class's **kwargs)
    unknown = [k for k in [*node, *given] if not str(k).startswith("_") and k not in accepted]
    if unknown:
        valid = [name for name in accepted if name not in given]
        raise UserError(f"{key}.{unknown[0]} is not a setting of {cls.__name__}; valid: {', '.join(valid)}")


def build_datamodule(cfg: DictConfig) -> SplitDataModule:
    # _convert_="all": plain lists/dicts, so hparams in checkpoints load with weights_only=True.
    return build(cfg.data, "data", _convert_="all")


def build_model(cfg: DictConfig, dm: SplitDataModule) -> SupervisedModule:
    """The data tells the model its task, input shape, output width, train rows, target scale
    (its DataSpec) and the scaling of its pixels; a model that takes only some kinds of input says so first. With
    model.steps_per_call != 1 or model.cuda_graphs=true the model trains under the speed layer."""
    spec = dm.spec
    check_input_kind(cfg.model, spec)
    suggest_class_weight(spec, cfg.model.get("class_weight"))
    optimizer = instantiate(cfg.optimizer)
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    arguments = build(
        cfg.model,
        "model",
        _partial_=True,  # the class and its arguments: the speed layer may choose another class
        task=spec.task.value,
        input_shape=list(spec.input_shape),
        num_outputs=spec.num_outputs,
        train_size=spec.train_size,
        target_mean=spec.target_mean,
        target_std=spec.target_std,
        class_counts=list(spec.class_counts) if spec.class_counts else None,
        pixel_unit=pixel_unit(dm),
        optimizer=optimizer,
        scheduler=scheduler,
        _convert_="all",
    )
    speed = cfg.model.get("steps_per_call", 1), cfg.model.get("cuda_graphs", False)
    model = training_class(arguments.func, *speed, optimizer, scheduler)(**arguments.keywords)
    try:  # the optimizer checks its values when built; fail now, not when training starts
        if model.optimizer is not None:
            model.optimizer(model.parameters())
    except (TypeError, ValueError) as e:
        raise UserError(
            f"optimizer: {e}; check the optimizer.* values (python train.py --cfg job shows them)"
        ) from None
    model.weight_callbacks()  # model.freeze_epochs and model.ema checked before any training
    model.load_start_weights(cfg.paths.log_dir)  # model.weights, model.init_from
    return model


def pixel_unit(dm: SplitDataModule) -> list[list[float]] | None:
    """Images: how the network's input maps back to pixels in [0, 1] (Scaler.pixel_unit)."""
    spec = dm.spec
    if spec.kind is not InputKind.IMAGE:
        return None
    return dm.scaler.pixel_unit(spec.input_shape[0], spec.pixel_max or 255.0)


IMBALANCE_HINT = 3  # the largest class this many times the smallest: the log suggests model.class_weight


def suggest_class_weight(spec: DataSpec, class_weight: object) -> None:
    """A log line when the classes are imbalanced and model.class_weight is not set."""
    counts = spec.class_counts
    if counts and class_weight is None and max(counts) >= IMBALANCE_HINT * min(counts):
        per_class = dict(zip(spec.class_names or (), counts, strict=True))
        log.info("imbalanced classes (train rows per class: %s); model.class_weight=balanced weighs them as "
                 "scikit-learn's class_weight='balanced' does", per_class)  # fmt: skip


def check_input_kind(model_cfg: DictConfig, spec: DataSpec) -> None:
    """The model class's `input_kinds` (e.g. the CNN's: images only) against the data's kind."""
    model_class = get_class(model_cfg._target_)
    accepted = model_class.input_kinds if issubclass(model_class, SupervisedModule) else tuple(InputKind)
    if spec.kind not in accepted:
        name = model_class.__name__.lower()
        raise UserError(
            f"model={name} needs {' or '.join(accepted)} data, but the data gives {spec.kind} rows of "
            f"input_shape={spec.input_shape}; use model=mlp for tabular data, or an image dataset such as data=digits"
        )


# Trainer arguments Lightning takes on trust: a string there fails mid-training, far from the cause.
TRAINER_INTS = (
    "max_epochs",
    "min_epochs",
    "max_steps",
    "log_every_n_steps",
    "check_val_every_n_epoch",
    "accumulate_grad_batches",
    "num_sanity_val_steps",
)


def check_accelerator(accelerator: object) -> None:
    """A GPU asked for where none is usable: one line, before any data is read or fetched."""
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(
            f"trainer.accelerator={accelerator} but no GPU is usable here; use trainer.accelerator=cpu, "
            "or trainer.accelerator=auto to take a GPU when there is one"
        )


def build_trainer(cfg: DictConfig, extra_callbacks: list[L.Callback]) -> L.Trainer:
    """The Trainer with the `logger` and `callbacks` groups and `extra_callbacks`, the ones every
    run has. `cfg.monitor` must be resolved (resolve_monitor): the callbacks interpolate it."""
    for key in TRAINER_INTS:
        value = cfg.trainer.get(key)
        if value is not None and not is_int(value):
            raise UserError(f"trainer.{key}={value!r} is invalid: give an integer, e.g. trainer.{key}=10")
    check_accelerator(cfg.trainer.get("accelerator"))
    loggers = build_loggers(cfg)
    callbacks = [*build_callbacks(cfg, has_logger=bool(loggers)), *extra_callbacks]
    # Lightning's own summary lists the metric modules too: NetSummary replaces it.
    profiler = {} if cfg.trainer.get("profiler") else {"profiler": NoProfiler()}  # debug=profiler sets one
    return build(
        cfg.trainer,
        "trainer",
        callbacks=callbacks,
        logger=loggers or False,
        enable_model_summary=False,
        plugins=[WholeCheckpointIO()],  # checkpoints written whole: a full disk leaves no truncated one
        **profiler,
    )


def build_loggers(cfg: DictConfig) -> list[Logger]:
    return [instantiate(c) for c in (cfg.get("logger") or {}).values()]


def build_callbacks(cfg: DictConfig, has_logger: bool) -> list[L.Callback]:
    """The `callbacks` group (the best checkpoint and early stopping watch `monitor.*` by
    interpolation). Left out: those Lightning would refuse in this run, a learning-rate
    monitor without a logger, a progress bar with `trainer.enable_progress_bar=false` and the
    network summary with `trainer.enable_model_summary=false`."""
    callbacks = [instantiate(node) for node in (cfg.get("callbacks") or {}).values()]
    if not has_logger:
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if not cfg.trainer.get("enable_model_summary", True):
        callbacks = [c for c in callbacks if not isinstance(c, NetSummary)]
    return callbacks


def resolve_cfg_monitor(cfg: DictConfig, model: SupervisedModule) -> tuple[str, str]:
    """`monitor.metric` checked against what `model` logs, and `monitor.mode` resolved to the metric's
    declared direction (models.metrics): the callbacks interpolate it, and config.yaml records it."""
    metric, mode = resolve_monitor(cfg.monitor.metric, cfg.monitor.mode, model.metric_names("val"))
    cfg.monitor.mode = mode
    return metric, mode
