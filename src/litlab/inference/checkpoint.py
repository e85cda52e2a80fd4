"""Predictions from a checkpoint alone: new inputs are preprocessed with the state saved in it
(columns, one-hot encoding, scaler, image size and pixel range); no training data is read. The
reading and preprocessing are runtime/inputs.py's, the same as a bundle's (predict.py bundle=DIR)."""

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from litlab.checkpoints import store
from litlab.data.scaling import Scaler
from litlab.data_spec import DataSpec, TableColumns
from litlab.inference.restore import load_for_inference
from litlab.models import SupervisedModule
from litlab.review.console import quiet_third_party
from litlab.runtime.bundle import Preprocessing
from litlab.runtime.predict_files import check_new, write_predictions

BATCH = 1024  # rows per forward pass: memory stays bounded whatever the input's size


def preprocessing(spec: DataSpec, scaler: Scaler) -> Preprocessing:
    """The checkpoint's preprocessing in the runtime's terms (what a bundle's bundle.json records)."""
    if scaler.shift is None or scaler.scale is None:
        raise RuntimeError("preprocessing: the checkpoint's scaler is not fitted")
    columns = spec.columns
    return Preprocessing(
        task=spec.task,
        kind=spec.kind,
        input_shape=spec.input_shape,
        class_names=spec.class_names,
        scaling=scaler.method,
        shift=scaler.shift.float().cpu().numpy(),
        scale=scaler.scale.float().cpu().numpy(),
        columns=None
        if columns is None
        else TableColumns.encoded(columns.inputs, columns.categorical, columns.features),
        pixel_max=spec.pixel_max,
    )


class TorchPredictor:
    """A checkpoint's LightningModule on the CPU: outputs are its `predict_outputs` (temperature included)."""

    def __init__(self, model: SupervisedModule, prep: Preprocessing) -> None:
        self.model, self.preprocessing = model, prep

    @torch.no_grad()
    def outputs(self, x: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        parts = [self.model.predict_outputs(self.model(tensor[i : i + BATCH])) for i in range(0, len(x), BATCH)]
        return torch.cat(parts).numpy()


def checkpoint_predictor(ckpt_path: str | Path) -> TorchPredictor:
    """The checkpoint file's model and preprocessing, ready to predict (serve.py ckpt_path=... loads it so)."""
    model, spec, scaler = load_for_inference(ckpt_path)
    return TorchPredictor(model, preprocessing(spec, scaler))


def predict(ckpt_path: str, input: str, output: str, log_dir: str = "logs") -> pd.DataFrame:
    """Write the predictions for `input` to the CSV file `output`; return them."""
    quiet_third_party()
    check_new(output)
    predictor = checkpoint_predictor(store.resolve(ckpt_path, log_dir, prefer="best"))
    return write_predictions(predictor, input, output)
