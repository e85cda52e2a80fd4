"""Re-run the test stage from a checkpoint alone: model, data and preprocessing all come from it,
and the data must be the data it was trained on (litlab.data.fingerprint)."""

import logging
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from litlab import files
from litlab.checkpoints import store
from litlab.data import InMemoryDataModule
from litlab.data_spec import DataSpec, InputKind, Task
from litlab.errors import UserError
from litlab.evaluation.calibration import example_nll, fit_temperature, write_calibrated
from litlab.evaluation.report import Evaluated, build
from litlab.evaluation.report_files import write_events, write_report
from litlab.evaluation.scores import (
    Calibration,
    ClassificationNumbers,
    RegressionNumbers,
    TemperatureScaling,
    calibration,
    classification_numbers,
    regression_numbers,
)
from litlab.evaluation.split_outputs import SplitOutputs, collect
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
    """Test a checkpoint on the test split (or `split=val`); write `metrics.json`, the split's
    predictions and the report (`report/`, TensorBoard) to the run dir, and return the metrics.
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
    metrics: dict = {"status": "completed", "ckpt_path": str(path), "split": split}
    metrics[split] = stage(model, datamodule=datamodule)[0]
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    outputs = split_outputs(trainer, model, datamodule, split)
    # First: a temperature that cannot be fitted stops the run before it writes anything.
    scaling = temperature_scaling(trainer, model, datamodule, (split, outputs), path, output_dir) if calibrate else None
    write_predictions(output_dir / f"{split}_predictions.csv", outputs, datamodule, split)
    evaluated = Evaluated(
        split, str(path), datamodule.spec, outputs, scores(datamodule.spec, outputs),
        datamodule.row_indices(split), worst_features(datamodule, split, outputs.worst), scaling,
    )  # fmt: skip
    metrics["report"] = write_evaluation(evaluated, output_dir)
    files.write_json(output_dir / "metrics.json", metrics)
    log.info("metrics written to %s", output_dir / "metrics.json")
    print_summary(metrics["report"]["metrics"], output_dir, scaling, split)
    return metrics


def write_evaluation(evaluated: Evaluated, output_dir: Path) -> dict:
    """The report in `output_dir`/report and its TensorBoard event file; what metrics.json records of it."""
    report = build(evaluated)
    page = write_report(report, output_dir / REPORT)
    events = write_events(report, output_dir, evaluated.split)
    return {"path": str(page), "tensorboard": str(events), "metrics": report.scalars}


def split_outputs(
    trainer: L.Trainer, model: SupervisedModule, datamodule: InMemoryDataModule, split: str
) -> SplitOutputs:
    """Every example of `split` through the model, on the device the trainer tested on."""
    loaders = {"test": datamodule.test_dataloader, "val": datamodule.val_dataloader}
    model.to(trainer.strategy.root_device)  # where the split's batches are delivered
    try:
        return collect(model, loaders[split](), datamodule.spec.kind, TOP_LOSSES)
    finally:
        model.cpu()


def write_predictions(path: Path, outputs: SplitOutputs, datamodule: InMemoryDataModule, split: str) -> None:
    """The split's predictions in predict.py's format, with each row's place in the source data."""
    frame = outputs_frame(outputs.outputs, datamodule.spec, truth=outputs.targets)
    frame.insert(0, "row", datamodule.row_indices(split))
    files.write_with(path, lambda tmp: frame.to_csv(tmp, index=False))


def scores(spec: DataSpec, outputs: SplitOutputs) -> ClassificationNumbers | RegressionNumbers:
    if spec.task is Task.REGRESSION:
        return regression_numbers(outputs.outputs, outputs.targets)
    names = list(spec.class_names or ())
    return classification_numbers(outputs.outputs, outputs.targets, outputs.losses, names, spec.task is Task.BINARY)


def worst_features(datamodule: InMemoryDataModule, split: str, worst: torch.Tensor) -> pd.DataFrame | None:
    """The feature values (encoded, unscaled: the columns the network reads) of the top-loss rows of a table."""
    columns = datamodule.spec.columns
    if datamodule.spec.kind is not InputKind.TABLE or columns is None:
        return None
    return pd.DataFrame(datamodule.split_tensors(split).x[worst].numpy(), columns=list(columns.features))


def temperature_scaling(
    trainer: L.Trainer,
    model: SupervisedModule,
    datamodule: InMemoryDataModule,
    reported: tuple[str, SplitOutputs],
    ckpt_path: Path,
    output_dir: Path,
) -> TemperatureScaling:
    """Fit T on the val split's logits; each split's calibration before and after; the calibrated
    checkpoint. `reported`: the split the report is on, with its outputs (collected once)."""
    name, outputs = reported
    splits = {"val": outputs if name == "val" else split_outputs(trainer, model, datamodule, "val"), name: outputs}
    val = splits["val"]
    temperature = fit_temperature(model.task, val.logits, val.targets)
    before = {s: calibration_at(model, o, model.temperature) for s, o in splits.items()}
    after = {s: calibration_at(model, o, temperature) for s, o in splits.items()}
    for s, o in splits.items():  # argmax(z / T) = argmax(z): if accuracy moved, something else changed
        kept, scaled = (model.predict_outputs(o.logits, t).argmax(1) for t in (model.temperature, temperature))
        if not torch.equal(kept, scaled):
            raise RuntimeError(f"temperature scaling changed {int((kept != scaled).sum())} predictions of {s}")
    target = output_dir / store.CHECKPOINTS / CALIBRATED
    write_calibrated(ckpt_path, target, temperature)
    return TemperatureScaling(temperature, before, after, len(val.targets), str(target))


def calibration_at(model: SupervisedModule, outputs: SplitOutputs, temperature: float) -> Calibration:
    probs = model.predict_outputs(outputs.logits, temperature)
    return calibration(probs, outputs.targets, example_nll(model.task, outputs.logits, outputs.targets, temperature))


CONSOLE = {"acc": "accuracy", "f1_macro": "macro F1", "auroc": "ROC AUC", "ece": "ECE", "r2": "R²", "mae": "MAE",
           "rmse": "RMSE"}  # fmt: skip


def print_summary(scalars: dict[str, float], run_dir: Path, scaling: TemperatureScaling | None, split: str) -> None:
    """After the test metrics: where the report is, its headline numbers, the temperature's effect."""
    rows = [("report", str(run_dir / REPORT / "report.md")), ("tensorboard", f"tensorboard --logdir {run_dir}")]
    rows += [(f"{split} {label}", f"{scalars[name]:.4f}") for name, label in CONSOLE.items() if name in scalars]
    if scaling is not None:
        rows.append(
            ("temperature", f"T = {scaling.temperature:.4f}, fitted on the val split ({scaling.fitted_on} rows)")
        )
        for s in scaling.before:  # val: the split T was fitted on; the report's split: held out
            b, a = scaling.before[s], scaling.after[s]
            rows.append((f"{s} calibrated", f"ECE {b.ece:.4f} → {a.ece:.4f}, NLL {b.nll:.4f} → {a.nll:.4f}"))
        rows.append(("calibrated", scaling.checkpoint))
    print_lines(rows)
