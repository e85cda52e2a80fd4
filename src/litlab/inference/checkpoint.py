"""Predictions from a checkpoint alone: new inputs are preprocessed with the data contract and scaler saved
in it (columns, one-hot encoding, image size and pixel range, the scaler's statistics); no training data
is read. The reading, scaling and table are the runtime's (runtime/predict_files.py), the same as a
bundle's (predict.py bundle=DIR); only the model is the checkpoint's torch module."""

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from litlab.checkpoints import store
from litlab.inference.restore import Restored, restore
from litlab.review.console import quiet_third_party
from litlab.runtime.predict_files import check_new, write_predictions

BATCH = 1024  # rows per forward pass: memory stays bounded whatever the input's size


class TorchPredictor:
    """A checkpoint's LightningModule on the CPU with its DataSpec and scaler: outputs are its
    `predict_outputs` (temperature included)."""

    def __init__(self, restored: Restored) -> None:
        self.model, self.spec, self.scaler = restored.model, restored.spec, restored.scaler

    @torch.no_grad()
    def outputs(self, x: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        parts = [self.model.predict_outputs(self.model(tensor[i : i + BATCH])) for i in range(0, len(x), BATCH)]
        return torch.cat(parts).numpy()


def checkpoint_predictor(ckpt_path: str | Path) -> TorchPredictor:
    """The checkpoint file's model, data contract and scaler, ready to predict (serve.py ckpt_path=... loads it so)."""
    return TorchPredictor(restore(ckpt_path))


def predict(ckpt_path: str, input: str, output: str, log_dir: str = "logs") -> pd.DataFrame:
    """Write the predictions for `input` to the CSV file `output`; return them."""
    quiet_third_party()
    check_new(output)
    predictor = checkpoint_predictor(store.resolve(ckpt_path, log_dir, prefer="best"))
    return write_predictions(predictor, input, output)
