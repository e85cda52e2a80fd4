"""Build data, model, callbacks, loggers and trainer from a composed config; fit, test, record."""

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ProgressBar
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, ListConfig, OmegaConf

from litlab.console import print_config_tree
from litlab.data import InMemoryDataModule
from litlab.jobs import job_overrides
from litlab.models import SupervisedModule
from litlab.models.metrics import resolve_monitor
from litlab.report import parse_overrides

log = logging.getLogger(__name__)

HPARAM_GROUPS = ("data", "model", "optimizer", "scheduler", "seed")


def build(node: DictConfig, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, raising the class's own error (which names the bad value)
    instead of Hydra's wrapper around it."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        if e.__cause__ is not None:
            raise e.__cause__ from None
        raise


def build_datamodule(cfg: DictConfig) -> InMemoryDataModule:
    # _convert_="all": plain lists/dicts, so hparams in checkpoints load with weights_only=True.
    return build(cfg.data, _convert_="all")


def build_model(cfg: DictConfig, dm: InMemoryDataModule) -> SupervisedModule:
    """The data tells the model its task, input shape, output width, train rows and target scale."""
    target_mean, target_std = dm.target_stats
    return build(
        cfg.model,
        task=dm.task.value,
        input_shape=list(dm.input_shape),
        num_outputs=dm.num_outputs,
        train_size=dm.train_size,
        target_mean=target_mean,
        target_std=target_std,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        _convert_="all",
    )


def build_loggers(cfg: DictConfig) -> list[Logger]:
    return [instantiate(c) for c in (cfg.get("logger") or {}).values()]


def build_callbacks(cfg: DictConfig, metric: str, mode: str, has_logger: bool) -> list[L.Callback]:
    """The `callbacks` group. Those whose `monitor` is `???` (best checkpoint, early stopping)
    watch `metric` in `mode`. Left out: those Lightning would refuse in this run, a learning-rate
    monitor without a logger and a progress bar with `trainer.enable_progress_bar=false`."""
    callbacks = []
    for node in (cfg.get("callbacks") or {}).values():
        watch = {"monitor": metric, "mode": mode} if OmegaConf.is_missing(node, "monitor") else {}
        callbacks.append(instantiate(node, **watch))
    if not has_logger:
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    return callbacks


def hparams_for_tensorboard(cfg: DictConfig, overrides: list[str]) -> dict:
    """The swept-over part of the config, flattened to `model.hidden_sizes`-style keys: the
    data/model/optimizer/scheduler groups and seed, plus every key the job overrides
    (`trainer.max_epochs=5` gives its value, `model=cnn` the option name)."""
    nested = {
        k: OmegaConf.to_container(cfg[k], resolve=True) if isinstance(cfg[k], DictConfig) else cfg[k]
        for k in HPARAM_GROUPS
        if k in cfg
    }
    hparams = pd.json_normalize(nested, sep=".").iloc[0].to_dict()
    for key, text in parse_overrides(overrides).items():
        value = OmegaConf.select(cfg, key, default=text)
        hparams[key] = text if isinstance(value, DictConfig | ListConfig) else value
    return hparams


def fast_cuda_checks() -> None:
    """Undo Lightning's PYTORCH_NVML_BASED_CUDA_CHECK=1 (set when it is imported, so that a forked
    process does not inherit an initialized CUDA). With it, each torch.cuda.is_available()
    re-opens NVML, about 0.3 ms, and torch's optimizers ask on every step. litlab never forks
    after touching CUDA: DDP starts fresh processes (Lightning's subprocess launcher)."""
    os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)


def train(cfg: DictConfig) -> dict:
    """Run one training job described by `cfg`; return what it writes to metrics.json."""
    start = time.perf_counter()
    fast_cuda_checks()
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    if (output_dir / "metrics.json").exists():
        raise FileExistsError(
            f"paths.output_dir={str(output_dir)!r} already holds a finished run; give each run a new dir "
            "(the default hydra.run.dir does) so that its checkpoints and metrics are not overwritten"
        )
    output_dir.mkdir(parents=True, exist_ok=True)

    # Data first: loading it checks it, and it decides what the model looks like.
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    metric, mode = resolve_monitor(cfg.monitor.metric, cfg.monitor.mode, model.metric_names("val"))
    cfg.monitor.mode = mode  # config.yaml records the mode that ran, not 'auto'
    loggers = build_loggers(cfg)
    callbacks = build_callbacks(cfg, metric, mode, has_logger=bool(loggers))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    # Under DDP every rank runs this function; only rank 0 prints and writes files.
    if cfg.extras.print_config and trainer.is_global_zero:
        print_config_tree(cfg)
    if trainer.is_global_zero:
        OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)

    fit_start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    fit_time = time.perf_counter() - fit_start

    ckpt = trainer.checkpoint_callback
    best = ckpt.best_model_path if ckpt is not None and ckpt.best_model_path else None
    if best is None:
        log.warning("no checkpoint was saved (fast_dev_run or checkpointing off): testing the final weights")
    val = trainer.validate(model, datamodule=datamodule, ckpt_path=best, verbose=False)[0]
    test = trainer.test(model, datamodule=datamodule, ckpt_path=best)[0]

    optimized = val.get(metric)
    if optimized is not None and not math.isfinite(optimized):
        raise FloatingPointError(
            f"{metric} is {optimized} on the best checkpoint: training diverged. Lower optimizer.lr."
        )
    metrics = {
        "status": "completed",
        "monitor": metric,
        "mode": mode,
        "optimized_metric": optimized,
        "val": val,
        "test": test,
        "best_ckpt": best,
        "epochs": trainer.current_epoch,
        "wall_time_s": round(time.perf_counter() - start, 3),
        "fit_time_s": round(fit_time, 3),  # trainer.fit alone: no imports, data loading or testing
        "overrides": job_overrides(),
    }
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):  # the HParams tab pairs these with the final metrics
            final = {f"hp/{k}": v for k, v in {**val, **test}.items()}
            logger.log_hyperparams(hparams_for_tensorboard(cfg, job_overrides()), final)
            logger.finalize("success")
    if trainer.is_global_zero:
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        log.info("metrics written to %s", output_dir / "metrics.json")
    return metrics
