"""A trained checkpoint restored: its LightningModule, its data contract and fitted scaler, and, on
request, its DataModule (evaluate.py, export.py's sample inputs). Every load is weights_only=True."""

import logging
from pathlib import Path

from litlab.arguments import accepted_keys
from litlab.checkpoints import store
from litlab.checkpoints.store import recorded_class
from litlab.compat import datamodule_state
from litlab.data import InMemoryDataModule
from litlab.data import fingerprint as fp
from litlab.data.scaling import Scaler
from litlab.data_spec import DataSpec, from_datamodule_state
from litlab.errors import UserError
from litlab.models import SupervisedModule

log = logging.getLogger(__name__)

# data.* settings that decide which rows are the test set, or how they are encoded: the
# checkpoint's own values are the only ones that test what was trained.
FIXED_DATA_KEYS = ("split", "seed", "scaling", "num_folds", "fold", "target", "target_type", "features", "drop_columns")


def load_for_inference(ckpt_path: str | Path) -> tuple[SupervisedModule, DataSpec, Scaler]:
    """The trained model (eval mode, CPU), its data's DataSpec and the fitted scaler, from the checkpoint."""
    classes, ckpt = store.checkpoint_classes(ckpt_path)
    state = datamodule_state(ckpt, classes["datamodule_class"])
    model_class = store.recorded_class(classes, "model_class", SupervisedModule)
    model = model_class.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
    scaler = Scaler(state["scaler"]["method"])
    scaler.load_state_dict(state["scaler"])
    return model.eval(), from_datamodule_state(state), scaler


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
    datamodule_class = recorded_class(classes, "datamodule_class", InMemoryDataModule)
    check_data_keys(data, datamodule_class)
    datamodule = datamodule_class.load_from_checkpoint(path, weights_only=True, **data)
    if saved is None:
        log.warning("%s records no data fingerprint (an older checkpoint): the test data is not checked", path)
    else:
        fp.check_same(saved, datamodule.fingerprint)
    model_class = recorded_class(classes, "model_class", SupervisedModule)
    model = model_class.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    return model, datamodule


def check_data_keys(data: dict, datamodule_class: type) -> None:
    """Every data.* override is a setting of the checkpoint's DataModule."""
    accepted = accepted_keys(datamodule_class)
    unknown = [k for k in data if accepted is not None and k not in accepted]
    if unknown:
        raise UserError(
            f"data.{unknown[0]} is not a setting of {datamodule_class.__name__}, the checkpoint's data; "
            f"valid: {', '.join(k for k in accepted or () if k not in FIXED_DATA_KEYS)}"
        )
