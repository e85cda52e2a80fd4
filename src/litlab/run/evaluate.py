"""Re-run the test stage from a checkpoint alone: model, data and preprocessing all come from it,
and the data must be the data it was trained on (litlab.data.fingerprint)."""

import logging
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from litlab import files
from litlab.checkpoints import store
from litlab.checkpoints.store import recorded_class
from litlab.compat import datamodule_state
from litlab.data import InMemoryDataModule
from litlab.data import fingerprint as fp
from litlab.errors import UserError
from litlab.models import SupervisedModule
from litlab.review.console import quiet_third_party
from litlab.run.outputs import outputs_frame

log = logging.getLogger(__name__)

# data.* settings that decide which rows are the test set, or how they are encoded: the
# checkpoint's own values are the only ones that test what was trained.
FIXED_DATA_KEYS = ("split", "seed", "scaling", "num_folds", "fold", "target", "target_type", "features", "drop_columns")


def load_checkpoint(path: str | Path, data: dict | None = None) -> tuple[SupervisedModule, InMemoryDataModule]:
    """Rebuild the LightningModule and DataModule (with its fitted scaler) that wrote `path`.
    `data` overrides where the data is (e.g. {'path': ...}); it must be the same data."""
    data = data or {}
    fixed = [k for k in data if k in FIXED_DATA_KEYS]
    if fixed:
        raise UserError(
            f"data.{fixed[0]} cannot be changed when evaluating: it decides which rows are the test set or how "
            "they are encoded, so the checkpoint's own value is used. Only where the data is may change "
            "(data.path, data.data_dir)"
        )
    classes, ckpt = store.checkpoint_classes(path)
    saved = datamodule_state(ckpt, classes["datamodule_class"]).get("fingerprint")
    gone = fp.missing_files(saved) if saved and not data else []
    if saved and gone:
        raise UserError(
            f"{saved['key']}: the training data {gone[0]} is gone (moved or deleted); give its new place, "
            f"e.g. python evaluate.py ckpt_path={path} {saved['key']}=NEW"
        )
    datamodule = recorded_class(classes, "datamodule_class", InMemoryDataModule).load_from_checkpoint(
        path, weights_only=True, **data
    )
    if saved is None:
        log.warning("%s records no data fingerprint (an older checkpoint): the test data is not checked", path)
    else:
        fp.check_same(saved, datamodule.fingerprint)
    model_class = recorded_class(classes, "model_class", SupervisedModule)
    model = model_class.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    return model, datamodule


def evaluate(cfg: DictConfig) -> dict:
    """Test a checkpoint; write `metrics.json` to the run dir and return it."""
    quiet_third_party()
    path = store.resolve(cfg.ckpt_path, cfg.paths.log_dir, prefer="best")
    given = OmegaConf.to_container(cfg.data) if cfg.get("data") else {}
    data = {str(k): v for k, v in given.items() if v is not None} if isinstance(given, dict) else {}
    model, datamodule = load_checkpoint(path, data)
    trainer: L.Trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    test = trainer.test(model, datamodule=datamodule)[0]
    metrics = {"status": "completed", "ckpt_path": str(path), "test": test}
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # The test set's predictions, in predict.py's format, with each row's place in the source data.
    batches = trainer.predict(model, dataloaders=datamodule.test_dataloader()) or []
    outputs = torch.cat([b for b in batches if isinstance(b, torch.Tensor)])  # (N, C) or (N,)
    frame = outputs_frame(outputs.cpu(), datamodule.spec, truth=datamodule.split_labels("test"))
    frame.insert(0, "row", datamodule.row_indices("test"))
    files.write_with(output_dir / "test_predictions.csv", lambda path: frame.to_csv(path, index=False))
    files.write_json(output_dir / "metrics.json", metrics)
    log.info("metrics written to %s", output_dir / "metrics.json")
    return metrics
