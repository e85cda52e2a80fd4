"""One training job: start the run, fit, test the best checkpoint, write its record (run.build builds the parts)."""

import json
import logging
import math
import time
from dataclasses import replace
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from litlab import files, speed
from litlab.checkpoints import store
from litlab.checkpoints.callbacks import best_checkpoint
from litlab.checkpoints.resume import RandomState, check_resumable, requeued_checkpoint, rerun_checkpoint
from litlab.compat import allow_fast_cuda_checks
from litlab.data import SplitDataModule
from litlab.data.check import data_report, summary_lines, warnings_for
from litlab.data.splits import checked_seed
from litlab.errors import UserError
from litlab.evaluation.test_intervals import TestIntervals
from litlab.files.run_record import RunRecord
from litlab.hydra_job import job_overrides
from litlab.models import SupervisedModule
from litlab.review import tensorboard
from litlab.review.console import (
    print_config_summary,
    print_result,
    quiet_checkpoint_loading,
    quiet_third_party,
)
from litlab.review.mlflow import MLflowRun
from litlab.run import lr_find
from litlab.run.build import build_datamodule, build_model, build_trainer, check_accelerator, resolve_cfg_monitor
from litlab.run.interrupts import InterruptCheckpoint
from litlab.run.job import where_it_ran
from litlab.run.provenance import provenance
from litlab.sweeps.pruning import TrialPruning

log = logging.getLogger(__name__)

DATA_REPORT = "data_report.json"  # the data check's findings, in the run dir


def start_run(cfg: DictConfig) -> tuple[Path, Path | None]:
    """Seed everything and check the run dir holds no finished run; return the run dir and the
    checkpoint to resume from: `ckpt_path`'s, or for a requeued SLURM job or a sweep's job run
    again the one its interrupted attempt left in the run dir."""
    allow_fast_cuda_checks()
    L.seed_everything(checked_seed(cfg.seed, "seed"), workers=True, verbose=False)  # config.yaml records it
    output_dir = Path(cfg.paths.output_dir)
    requeued = requeued_checkpoint(output_dir) or rerun_checkpoint(output_dir)
    if requeued is None and RunRecord.exists(output_dir):
        raise UserError(
            f"paths.output_dir={str(output_dir)!r} already holds a finished run; give each run a new dir "
            "(the default hydra.run.dir does) so that its checkpoints and metrics are not overwritten"
        )
    if requeued is None and cfg.get("ckpt_path"):
        return output_dir, store.resolve(cfg.ckpt_path, cfg.paths.log_dir)
    return output_dir, requeued


def record_config(cfg: DictConfig, trainer: L.Trainer, model: SupervisedModule, output_dir: Path) -> None:
    """The config lines on the console (without the model settings that do not apply) and
    config.yaml in the run dir. Under DDP every rank runs train(); only rank 0 prints and writes files."""
    if not trainer.is_global_zero:
        return
    if cfg.extras.print_config:
        print_config_summary(cfg, str(output_dir / "config.yaml"), {"model": model.settings_not_applying()})
    files.write_with(output_dir / "config.yaml", lambda path: OmegaConf.save(cfg, path, resolve=True))


def record_data_check(datamodule: SplitDataModule, trainer: L.Trainer, output_dir: Path) -> None:
    """The data check (litlab.data.check) before training: its lines in the log, its warnings,
    data_report.json in the run dir (written whole) and the report in TensorBoard's Text tab."""
    if not trainer.is_global_zero:
        return
    report = data_report(datamodule)
    for line in summary_lines(report):
        log.info("data: %s", line)
    for warning in warnings_for(report):
        log.warning("data: %s", warning)
    text = json.dumps(report, indent=2)
    files.write_text(output_dir / DATA_REPORT, text)
    tensorboard_logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
    if tensorboard_logger is not None:
        tensorboard_logger.experiment.add_text("data/report", f"```\n{text}\n```", global_step=0)


def train(cfg: DictConfig) -> dict:
    """Run one training job described by `cfg`; return its record as metrics.json holds it."""
    return train_recorded(cfg).to_json()


def train_recorded(cfg: DictConfig) -> RunRecord:
    """Run one training job described by `cfg`; return the record it writes to its run dir."""
    start = time.perf_counter()
    quiet_third_party()
    output_dir, resume = start_run(cfg)
    if (searched := lr_find.search_first(cfg, output_dir, start)) is not None:
        return searched  # tune=lr_find without tune.apply: the range test was the run
    check_accelerator(cfg.trainer.get("accelerator"))  # before the data, which may be a download
    # Data first: loading it checks it, and it decides what the model looks like.
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    if resume is not None:
        check_resumable(resume, model, cfg.trainer.get("max_epochs"))
    metric, mode = resolve_cfg_monitor(cfg, model)
    interrupts = InterruptCheckpoint(output_dir / store.CHECKPOINTS)
    trial = trial_pruning(cfg, metric)
    trainer = build_trainer(cfg, extra_callbacks=[RandomState(), interrupts, *filter(None, [trial])])
    speed.check_trainer(model, trainer)
    record_config(cfg, trainer, model, output_dir)
    record_data_check(datamodule, trainer, output_dir)

    with interrupts.recorded():
        val, test, best, pruned_at, fit_time = fit_and_test(trainer, model, datamodule, resume, trial)
    settings = tensorboard.hparams(cfg, not_applying=model.settings_not_applying())  # for HParams and MLflow
    status, optimized = outcome(pruned_at, metric, val)
    record = RunRecord(
        status, optimized_metric=optimized, pruned_at_epoch=pruned_at, monitor=metric, mode=mode, val=val, test=test,
        test_intervals=test_intervals(trainer),
        best_ckpt=best, resumed_from=str(resume) if resume is not None else None,
        provenance=provenance(trainer, datamodule.fingerprint, cfg.seed),  # litlab reproduce compares
    )  # fmt: skip
    record = log_tensorboard(trainer, settings, with_run_facts(record, trainer, model, start, fit_time))
    if trainer.is_global_zero:
        write_record(output_dir, record)
        log_mlflow(trainer, settings, record, output_dir)
    return record


def fit_and_test(
    trainer: L.Trainer,
    model: SupervisedModule,
    datamodule: SplitDataModule,
    resume: Path | None,
    trial: TrialPruning | None,
) -> tuple[dict, dict, str | None, int | None, float]:
    """Fit, then the best checkpoint's val and test metrics: (val, test, best checkpoint, the epoch
    the pruner stopped the trial at or None, seconds in trainer.fit)."""
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    fit_time = time.perf_counter() - start
    pruned_at = trial.pruned_epoch if trial else None
    # A pruned trial is not tested: its last validation is what the study saw.
    val, test, best = test_best(trainer, model, datamodule) if pruned_at is None else last_validation(trainer)
    return val, test, best, pruned_at, fit_time


def with_run_facts(
    record: RunRecord, trainer: L.Trainer, model: SupervisedModule, start: float, fit_time: float
) -> RunRecord:
    """`record` with how the run went: its length, time, overrides and machine."""
    return replace(
        record,
        epochs=trainer.current_epoch,
        steps=trainer.global_step,
        steps_per_call=speed.steps_per_call(model),
        wall_time_s=round(time.perf_counter() - start, 3),
        fit_time_s=round(fit_time, 3),
        overrides=job_overrides(),
        world_size=trainer.world_size,
        environment=where_it_ran(),
    )


def write_record(output_dir: Path, record: RunRecord) -> None:
    """The run's record, then the result on the console, last."""
    path = record.write(output_dir)
    log.info("metrics written to %s", path)
    tensorboard_root = str(Path(record.tensorboard).parent) if record.tensorboard else None
    print_result(record, str(output_dir), tensorboard_root)


def outcome(pruned_at: int | None, metric: str, val: dict) -> tuple[str, float | None]:
    """The status and the optimized metric: the best checkpoint's, or none where the pruner stopped the run."""
    if pruned_at is None:
        return "completed", finite(val.get(metric), metric)
    return "pruned", None


def finite(value: float | None, metric: str) -> float | None:
    """The optimized metric, which a sweeper compares: NaN or inf means training diverged."""
    if value is not None and not math.isfinite(value):
        raise FloatingPointError(f"{metric} is {value} on the best checkpoint: training diverged. Lower optimizer.lr.")
    return value


def test_best(
    trainer: L.Trainer, model: SupervisedModule, datamodule: SplitDataModule
) -> tuple[dict, dict, str | None]:
    """Validation and test metrics of the best checkpoint (the final weights if there is none), and its path."""
    ckpt = best_checkpoint(trainer)
    best = ckpt.best_model_path if ckpt is not None and ckpt.best_model_path else None
    if best is None:
        log.warning("no checkpoint was saved (fast_dev_run or checkpointing off): testing the final weights")
    with quiet_checkpoint_loading():
        val = trainer.validate(model, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)[0]
        test = trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)[0]
    return dict(val), dict(test), best


def test_intervals(trainer: L.Trainer) -> dict[str, list[float]] | None:
    """The test metrics' bootstrap intervals (litlab.evaluation.test_intervals), where its callback ran."""
    kept = next((c for c in trainer.callbacks if isinstance(c, TestIntervals)), None)  # type: ignore[attr-defined]
    return {name: list(bounds) for name, bounds in kept.found.items()} if kept is not None and kept.found else None


def trial_pruning(cfg: DictConfig, metric: str) -> TrialPruning | None:
    """The callback reporting to this job's Optuna trial (litlab.sweeps.pruning); None outside a search."""
    trial = cfg.get("optuna")
    if not trial or trial.trial is None:
        return None
    args = OmegaConf.to_container(trial.pruner_args) if trial.pruner_args else {}
    return TrialPruning(trial.storage, trial.study_name, trial.trial, trial.pruner, args, metric)  # type: ignore[arg-type]


def last_validation(trainer: L.Trainer) -> tuple[dict, dict, str | None]:
    """test_best's result for a run stopped early by its pruner: the last epoch's validation
    metrics, no test, and the best checkpoint so far."""
    val = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    ckpt = best_checkpoint(trainer)
    return val, {}, (ckpt.best_model_path or None) if ckpt is not None else None


def log_mlflow(trainer: L.Trainer, settings: dict, record: RunRecord, output_dir: Path) -> None:
    """The run's settings, final metrics and record files in MLflow (litlab.review.mlflow), once
    its record is written."""
    logger = next((lg for lg in trainer.loggers if isinstance(lg, MLflowRun)), None)
    if logger is not None:
        logger.log_final(settings, record.metrics, record.best_ckpt)
        logger.log_record(output_dir)


def log_tensorboard(trainer: L.Trainer, settings: dict, record: RunRecord) -> RunRecord:
    """The run's HParams session (its `settings`) and final metrics in TensorBoard
    (litlab.review.tensorboard); returns `record` with what it keeps of it: the hyperparameters
    and the run's TensorBoard dir."""
    logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
    if logger is None:
        return record
    if trainer.is_global_zero:
        tensorboard.log_session(logger.log_dir, settings, record.metrics, trainer.global_step)
    return replace(record, hparams=settings, tensorboard=logger.log_dir)
