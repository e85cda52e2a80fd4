"""A trained checkpoint restored: its LightningModule (eval mode, CPU), its data contract (DataSpec) and
the scaler's statistics, read once; its DataModule on request (evaluate.py, export.py's test split),
its data found and checked to be the data it was trained on. Every load is weights_only=True."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from litlab.arguments import accepted_keys
from litlab.checkpoints import store
from litlab.compat import datamodule_state
from litlab.data import SplitDataModule
from litlab.data import fingerprint as fp
from litlab.data_spec import DataSpec, ScalerStats, from_datamodule_state
from litlab.errors import UserError
from litlab.models import SupervisedModule

log = logging.getLogger(__name__)

# data.* settings that decide which rows are the test set, or how they are encoded: the
# checkpoint's own values are the only ones that test what was trained.
FIXED_DATA_KEYS = ("split", "seed", "scaling", "num_folds", "fold", "target", "target_type", "features", "drop_columns")


@dataclass(frozen=True)
class Restored:
    """What a checkpoint holds for prediction: the model, the DataSpec and the scaler's statistics;
    `datamodule()` rebuilds the DataModule that wrote it."""

    path: Path
    model: SupervisedModule
    spec: DataSpec
    scaler: ScalerStats
    classes: dict  # the classes that wrote the checkpoint (checkpoints.store.ENTRY)
    fingerprint: dict[str, Any] | None  # the training data's, None in checkpoints written before it

    def datamodule(self, data: Mapping[str, Any] | None = None) -> SplitDataModule:
        """The DataModule (its scaler fitted) that wrote the checkpoint. `data` overrides where the data is
        (e.g. {'path': ...}); it must be the same data."""
        data = dict(data or {})
        fixed = [k for k in data if k in FIXED_DATA_KEYS]
        if fixed:
            raise UserError(
                f"data.{fixed[0]} cannot be changed when evaluating: it decides which rows are the test set or how "
                "they are encoded, so the checkpoint's own value is used. Only where the data is may change "
                "(data.path, data.data_dir)"
            )
        saved = self.fingerprint
        gone = fp.missing_files(saved) if saved and not data else []
        if saved and gone:
            raise UserError(
                f"{saved['key']}: the training data {gone[0]} is gone (moved or deleted); give its new place, "
                f"e.g. litlab evaluate ckpt_path={self.path} {saved['key']}=NEW"
            )
        datamodule_class = store.recorded_class(self.classes, "datamodule_class", SplitDataModule)
        check_data_keys(data, datamodule_class)
        datamodule = datamodule_class.load_from_checkpoint(self.path, weights_only=True, **data)
        if saved is None:
            log.warning("%s records no data fingerprint (an older checkpoint): the test data is not checked", self.path)
        else:
            fp.check_same(saved, datamodule.fingerprint)
        return datamodule


def restore(path: str | Path) -> Restored:
    """The checkpoint file `path` restored: its model, data contract and scaler (its DataModule on request)."""
    classes, ckpt = store.checkpoint_classes(path)
    state = datamodule_state(ckpt, classes["datamodule_class"])
    model_class = store.recorded_class(classes, "model_class", SupervisedModule)
    model = model_class.load_from_checkpoint(path, map_location="cpu", weights_only=True).eval()
    spec = from_datamodule_state(state)
    if "spec" not in state:  # written before the DataSpec: the target's scale was the model's alone
        spec = replace(spec, train_size=model.train_size, target_mean=model.target_mean, target_std=model.target_std)
    saved = state["scaler"]  # data.scaling.Scaler's state_dict: fitted before the checkpoint was written
    shift, scale = (saved[k].float().cpu().numpy() for k in ("shift", "scale"))
    scaler = ScalerStats(saved["method"], shift, scale)
    return Restored(Path(path), model, spec, scaler, classes, state.get("fingerprint"))


def check_data_keys(data: dict, datamodule_class: type) -> None:
    """Every data.* override is a setting of the checkpoint's DataModule."""
    accepted = accepted_keys(datamodule_class)
    unknown = [k for k in data if accepted is not None and k not in accepted]
    if unknown:
        raise UserError(
            f"data.{unknown[0]} is not a setting of {datamodule_class.__name__}, the checkpoint's data; "
            f"valid: {', '.join(k for k in accepted or () if k not in FIXED_DATA_KEYS)}"
        )
