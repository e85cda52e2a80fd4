"""Predictions for a file or folder of new inputs, by any model that maps scaled inputs to outputs:
a bundle's ONNX network here, a checkpoint's torch module in inference/checkpoint.py. Reading (by the
model's DataSpec), scaling (by its ScalerStats) and the table are the same for both (runtime/inputs.py,
`outputs_of`, runtime/outputs.py)."""

import logging
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from litlab import files
from litlab.data_spec import DataSpec, ScalerStats
from litlab.errors import UserError
from litlab.runtime.inputs import read_inputs
from litlab.runtime.onnx_model import OnnxPredictor
from litlab.runtime.outputs import outputs_table

log = logging.getLogger(__name__)


class Predictor(Protocol):
    """A model ready to predict: its data contract, its scaler, and its outputs (probabilities (N, C) or
    values (N,)) for the scaled float32 inputs (N, ...)."""

    spec: DataSpec
    scaler: ScalerStats

    def outputs(self, x: np.ndarray) -> np.ndarray: ...


def outputs_of(predictor: Predictor, x: np.ndarray) -> np.ndarray:
    """The outputs for raw inputs `x` (N, ...) as the training data held them: scaled with the predictor's
    own statistics, then run. Every prediction from a file, and export's parity check, goes through here."""
    return predictor.outputs(predictor.scaler.apply(x))


def predictions(predictor: Predictor, input: str | Path) -> pd.DataFrame:
    """The id column of each input (`row` or `file`), then outputs_table's columns."""
    spec = predictor.spec
    x, ids = read_inputs(input, spec)
    table = outputs_table(outputs_of(predictor, x), spec.task, spec.class_names)
    return pd.concat([ids, table], axis=1)


def check_new(output: str | Path) -> Path:
    """`output` as a new file: never an earlier run's predictions overwritten, never a folder, and in a
    folder that is one (or can be made)."""
    out = Path(output)
    if out.is_dir():
        raise UserError(
            f"output={str(output)!r} is a folder; give the path of a new CSV file, e.g. {out / 'predictions.csv'}"
        )
    if out.exists() or out.is_symlink():
        raise UserError(f"output={str(output)!r} exists; predict.py does not overwrite files, give a new path")
    files.check_in_a_folder(out, "output")
    return out


def write_predictions(predictor: Predictor, input: str | Path, output: str | Path) -> pd.DataFrame:
    """The predictions for `input`, written whole to the new CSV file `output`; returned."""
    out = check_new(output)
    frame = predictions(predictor, input)
    files.write_with(out, lambda path: frame.to_csv(path, index=False))
    log.info("%d predictions written to %s", len(frame), out)
    return frame


def predict_bundle(bundle: str | Path, input: str, output: str) -> pd.DataFrame:
    """predict.py bundle=DIR: the bundle's ONNX network by onnxruntime; torch is never imported."""
    check_new(output)
    return write_predictions(OnnxPredictor.load(bundle), input, output)
