"""Re-run the test stage from a checkpoint alone: model, data and preprocessing all come from it."""

import json
import logging
from pathlib import Path

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from litlab import checkpoint
from litlab.data import InMemoryDataModule
from litlab.models import SupervisedModule
from litlab.predict import outputs_frame

log = logging.getLogger(__name__)


def load_checkpoint(path: str | Path) -> tuple[SupervisedModule, InMemoryDataModule]:
    """Rebuild the LightningModule and DataModule (with its fitted scaler) that wrote `path`."""
    classes, _ = checkpoint.checkpoint_classes(path)
    datamodule = get_class(classes["datamodule_class"]).load_from_checkpoint(path, weights_only=True)
    model = get_class(classes["model_class"]).load_from_checkpoint(path, map_location="cpu", weights_only=True)
    return model, datamodule


def evaluate(cfg: DictConfig) -> dict:
    """Test a checkpoint; write `metrics.json` to the run dir and return it."""
    path = checkpoint.resolve(cfg.ckpt_path, cfg.paths.log_dir, prefer="best")
    model, datamodule = load_checkpoint(path)
    trainer: L.Trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    test = trainer.test(model, datamodule=datamodule)[0]
    metrics = {"status": "completed", "ckpt_path": str(path), "test": test}
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # The test set's predictions, in predict.py's format, with each row's place in the source data.
    outputs = torch.cat(trainer.predict(model, dataloaders=datamodule.test_dataloader()))
    frame = outputs_frame(outputs.cpu(), datamodule.task, datamodule.class_names)
    frame.insert(0, "row", datamodule.row_indices("test"))
    frame.to_csv(output_dir / "test_predictions.csv", index=False)
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    log.info("metrics written to %s", output_dir / "metrics.json")
    return metrics
