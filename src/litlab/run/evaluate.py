"""`evaluate.py`: re-run the test stage from a checkpoint alone, then report on the split. Model,
data and preprocessing all come from the checkpoint, and the data must be the data it was trained
on (litlab.data.fingerprint). The job loads, collects the split's outputs, scores them once
(litlab.evaluation.scored_split) and writes what they show: the predictions, the report, the
record (evaluation.json) and the console's lines."""

import logging
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from litlab import files
from litlab.checkpoints import store
from litlab.data import SplitDataModule
from litlab.data_spec import InputKind
from litlab.errors import UserError
from litlab.evaluation.record import EvaluationRecord
from litlab.evaluation.report_files import write_events, write_report
from litlab.evaluation.scored_split import ScoredSplit
from litlab.evaluation.scores import TemperatureScaling
from litlab.evaluation.split_outputs import SplitOutputs, collect
from litlab.evaluation.temperature_scaling import scale_temperature
from litlab.inference.outputs_frame import outputs_frame
from litlab.inference.restore import restore
from litlab.models import SupervisedModule
from litlab.review.console import print_lines, quiet_third_party

log = logging.getLogger(__name__)

SPLITS = ("test", "val")  # what split= may name; the report is on one of them
TOP_LOSSES = 16  # examples in the report's top losses
REPORT = "report"  # the report's folder in the run dir
CALIBRATED = "calibrated.ckpt"  # calibrate=true's checkpoint, in the run dir's checkpoints/


def checked_split(value: object) -> str:
    if value not in SPLITS:
        raise UserError(f"split={value!r} is not a split evaluate.py reports on; valid: {', '.join(SPLITS)}")
    return str(value)


def evaluate(cfg: DictConfig) -> dict:
    """Test a checkpoint on the test split (or `split=val`); write `evaluation.json`, the split's
    predictions and the report (`report/`, TensorBoard) to the run dir, and return the record.
    `calibrate=true`: also fit a temperature on the val split and write `checkpoints/calibrated.ckpt`."""
    quiet_third_party()
    split, calibrate = checked_split(cfg.get("split", "test")), bool(cfg.get("calibrate", False))
    path = store.resolve(cfg.ckpt_path, cfg.paths.log_dir, prefer="best")
    given = OmegaConf.to_container(cfg.data) if cfg.get("data") else {}
    data = {str(k): v for k, v in given.items() if v is not None} if isinstance(given, dict) else {}
    restored = restore(path)
    model, datamodule = restored.model, restored.datamodule(data)
    if calibrate and not model.task.is_classification:  # before any work: one line, at once
        raise UserError(f"calibrate=true fits a temperature to class probabilities; {path} is a {model.task} model")
    trainer: L.Trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    stage = {"test": trainer.test, "val": trainer.validate}[split]
    tested = dict(stage(model, datamodule=datamodule)[0])
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    outputs = split_outputs(trainer, model, datamodule, split)
    # First: a temperature that cannot be fitted stops the run before it writes anything.
    scaling = calibrated(trainer, model, datamodule, (split, outputs), path, output_dir) if calibrate else None
    write_predictions(output_dir / f"{split}_predictions.csv", outputs, datamodule, split)
    rows, worst = datamodule.row_indices(split), worst_features(datamodule, split, outputs.worst)
    scored = ScoredSplit.score(split, str(path), datamodule.spec, outputs, rows, worst, scaling)
    record = write_evaluation(scored, tested, output_dir)
    report_rows = [("report", record.report_path), ("tensorboard", f"tensorboard --logdir {output_dir}")]
    print_lines(report_rows + scored.console_lines())
    return record.to_json()


def write_evaluation(scored: ScoredSplit, tested: dict[str, float], output_dir: Path) -> EvaluationRecord:
    """The report in `output_dir`/report, its TensorBoard event file, and the record naming both."""
    report = scored.report()
    page = write_report(report, output_dir / REPORT)
    events = write_events(report, output_dir, scored.split)
    record = EvaluationRecord(scored.ckpt_path, scored.split, tested, str(page), str(events), report.scalars)
    log.info("metrics written to %s", record.write(output_dir))
    return record


def split_outputs(trainer: L.Trainer, model: SupervisedModule, datamodule: SplitDataModule, split: str) -> SplitOutputs:
    """Every example of `split` through the model, on the device the trainer tested on."""
    loaders = {"test": datamodule.test_dataloader, "val": datamodule.val_dataloader}
    model.to(trainer.strategy.root_device)  # where the split's batches are delivered
    try:
        return collect(model, loaders[split](), datamodule.spec.kind, TOP_LOSSES)
    finally:
        model.cpu()


def calibrated(
    trainer: L.Trainer, model: SupervisedModule, datamodule: SplitDataModule, reported: tuple[str, SplitOutputs],
    ckpt_path: Path, output_dir: Path,
) -> TemperatureScaling:  # fmt: skip
    """calibrate=true: the temperature fitted on the val split and the calibrated checkpoint.
    `reported`: the split the report is on, with its outputs (collected once)."""
    name, outputs = reported
    val = outputs if name == "val" else split_outputs(trainer, model, datamodule, "val")
    return scale_temperature(model, {"val": val, name: outputs}, ckpt_path, output_dir / store.CHECKPOINTS / CALIBRATED)


def write_predictions(path: Path, outputs: SplitOutputs, datamodule: SplitDataModule, split: str) -> None:
    """The split's predictions in predict.py's format, with each row's place in the source data."""
    frame = outputs_frame(outputs.outputs, datamodule.spec, truth=outputs.targets)
    frame.insert(0, "row", datamodule.row_indices(split))
    files.write_with(path, lambda tmp: frame.to_csv(tmp, index=False))


def worst_features(datamodule: SplitDataModule, split: str, worst: torch.Tensor) -> pd.DataFrame | None:
    """The feature values (encoded, unscaled: the columns the network reads) of the top-loss rows of a table."""
    columns = datamodule.spec.columns
    if datamodule.spec.kind is not InputKind.TABLE or columns is None:
        return None
    return pd.DataFrame(datamodule.split_tensors(split).x[worst].numpy(), columns=list(columns.features))
