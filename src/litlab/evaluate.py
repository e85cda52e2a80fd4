"""Re-run the test stage from a checkpoint alone: model, data and preprocessing all come from it."""

import json
import logging
from pathlib import Path

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from litlab.data import InMemoryDataModule
from litlab.models import SupervisedModule

log = logging.getLogger(__name__)


def load_checkpoint(path: str | Path) -> tuple[SupervisedModule, InMemoryDataModule]:
    """Rebuild the LightningModule and DataModule (with its fitted scaler) that wrote `path`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={str(path)!r}: no such file; give a .ckpt written by train.py "
            "(e.g. logs/train/runs/<run>/checkpoints/last.ckpt)"
        )
    try:
        classes = torch.load(path, map_location="cpu", weights_only=True).get("litlab")
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same answer
        raise ValueError(f"ckpt_path={str(path)!r} is not a readable PyTorch checkpoint: {e}") from e
    if not classes or not classes.get("datamodule_class"):
        raise ValueError(
            f"ckpt_path={str(path)!r} was not written by litlab's train.py "
            "(it has no 'litlab' entry naming its model and data classes)"
        )
    datamodule = get_class(classes["datamodule_class"]).load_from_checkpoint(path)
    model = get_class(classes["model_class"]).load_from_checkpoint(path, map_location="cpu")
    return model, datamodule


def evaluate(cfg: DictConfig) -> dict:
    """Test a checkpoint; write `metrics.json` to the run dir and return it."""
    model, datamodule = load_checkpoint(cfg.ckpt_path)
    trainer: L.Trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    test = trainer.test(model, datamodule=datamodule)[0]
    metrics = {"status": "completed", "ckpt_path": str(cfg.ckpt_path), "test": test}
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    log.info("metrics written to %s", output_dir / "metrics.json")
    return metrics
