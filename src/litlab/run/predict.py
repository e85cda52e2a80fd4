"""Predictions from a checkpoint alone: new inputs are preprocessed with the state saved in it
(columns, one-hot encoding, scaler, image size and pixel range); no training data is read."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from litlab import files
from litlab.checkpoints import store
from litlab.compat import datamodule_state
from litlab.data.csv import read_table
from litlab.data.image_files import IMAGE_SUFFIXES, conform, decode, image_files
from litlab.data.scaling import Scaler
from litlab.data.spec import Columns, DataSpec, InputKind, from_datamodule_state
from litlab.errors import UserError
from litlab.models import SupervisedModule
from litlab.review.console import quiet_third_party
from litlab.run.outputs import outputs_frame

log = logging.getLogger(__name__)

def load_for_inference(ckpt_path: str | Path) -> tuple[SupervisedModule, DataSpec, Scaler]:
    """The trained model (eval mode, CPU), its data's DataSpec and the fitted scaler, from the checkpoint."""
    classes, ckpt = store.checkpoint_classes(ckpt_path)
    state = datamodule_state(ckpt, classes["datamodule_class"])
    model_class = store.recorded_class(classes, "model_class", SupervisedModule)
    model = model_class.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
    scaler = Scaler(state["scaler"]["method"])
    scaler.load_state_dict(state["scaler"])
    return model.eval(), from_datamodule_state(state), scaler


def read_inputs(path: str | Path, spec: DataSpec) -> tuple[torch.Tensor, pd.DataFrame]:
    """Raw inputs (N, ...) as the training data held them, and an id column per input
    (`row` of a CSV or .npy, `file` of an image)."""
    path = Path(path)
    if path.is_dir():
        return read_image_folder(path, spec)
    if path.suffix == ".npy":
        return read_npy(path, spec.input_shape, spec.kind)
    if path.suffix == ".csv":
        if spec.columns is None:
            raise UserError(
                f"input={str(path)!r}: this model was trained on images of shape {spec.input_shape}; "
                "give a folder of PNG/JPG files or a .npy array"
            )
        x = read_csv(path, spec.columns)
        return x, pd.DataFrame({"row": np.arange(len(x))})
    raise UserError(
        f"input={str(path)!r} is not a folder of images, a .npy file or a .csv file"
        + ("" if path.exists() else " (no such file or dir)")
    )


def read_csv(path: Path, columns: Columns) -> torch.Tensor:
    """The training feature columns of `path`, one-hot encoded as in training."""
    df = read_table(str(path), key="input")
    expected, categorical = list(columns.inputs), list(columns.categorical)
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise UserError(f"input={str(path)!r} lacks the column(s) {missing}; the model was trained on {expected}")
    df = df[expected]
    not_numeric = [c for c in expected if c not in categorical and not pd.api.types.is_numeric_dtype(df[c])]
    if not_numeric:
        raise UserError(f"input={str(path)!r}: column(s) {not_numeric} must be numeric, as in training")
    if df.isna().any().any():
        raise UserError(f"input={str(path)!r} has missing values in {list(df.columns[df.isna().any()])}")
    features = pd.get_dummies(df, columns=categorical, dtype="float32")
    unseen = [c for c in features.columns if c not in columns.features]
    if unseen:  # a category training never saw: all its one-hot columns stay 0
        log.warning("categories not seen in training (encoded as all-zero): %s", unseen)
    features = features.reindex(columns=list(columns.features), fill_value=0.0)
    return torch.as_tensor(features.to_numpy(dtype="float32"))


def read_npy(path: Path, shape: tuple[int, ...], kind: InputKind) -> tuple[torch.Tensor, pd.DataFrame]:
    try:
        x = np.load(path)  # allow_pickle=False: a file of pickled objects could run code
    except (ValueError, OSError) as e:
        raise UserError(
            f"input={str(path)!r} is not a plain numeric .npy array ({str(e).splitlines()[0]}); save it with "
            "np.save(path, array) from a numeric array (no objects)"
        ) from None
    one_channel = kind is InputKind.IMAGE and shape[0] == 1
    if one_channel and x.ndim == 3:  # (N, H, W) for one channel
        x = x[:, None]
    if tuple(x.shape[1:]) != shape:
        alt = f" or (N, {shape[1]}, {shape[2]})" if one_channel else ""
        expected = f"(N, {', '.join(map(str, shape))}){alt}"
        raise UserError(f"input={str(path)!r} has shape {tuple(x.shape)}; this model expects {expected}")
    tensor = torch.as_tensor(x if x.dtype == np.uint8 else x.astype("float32"))
    return tensor, pd.DataFrame({"row": np.arange(len(x))})


def read_image_folder(folder: Path, spec: DataSpec) -> tuple[torch.Tensor, pd.DataFrame]:
    """Every image file in `folder`, converted to the training's channels and (H, W) size,
    with pixels rescaled from 0..255 to the training data's range."""
    shape, pixel_max = spec.input_shape, spec.pixel_max
    if spec.kind is not InputKind.IMAGE:
        raise UserError(
            f"input={str(folder)!r} is a folder of images, but this model takes {shape[0]} features; give a .csv"
        )
    files = image_files(folder)
    if not files:
        raise UserError(f"input={str(folder)!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    channels, height, width = shape
    # Decoded, converted and resized as data=image_folder does in training.
    x = torch.stack([conform(decode(f, "input"), channels, (height, width)) for f in files])  # (N, C, H, W)
    if pixel_max is not None and pixel_max != 255.0:  # e.g. digits, whose pixels run 0..16
        x = x.float() * (pixel_max / 255.0)
    return x, pd.DataFrame({"file": [f.name for f in files]})


@torch.no_grad()
def predict_frame(
    model: SupervisedModule, spec: DataSpec, scaler: Scaler, x: torch.Tensor, batch_size: int = 1024
) -> pd.DataFrame:
    """Class, label and probabilities (classification) or the value (regression) per input."""
    outputs = [model.predict_outputs(model(scaler(x[i : i + batch_size]))) for i in range(0, len(x), batch_size)]
    return outputs_frame(torch.cat(outputs), spec)


def predict(ckpt_path: str, input: str, output: str, log_dir: str = "logs") -> pd.DataFrame:
    """Write the predictions for `input` to the CSV file `output`; return them."""
    quiet_third_party()
    out = Path(output)
    if out.exists():
        raise UserError(f"output={output!r} exists; predict.py does not overwrite files, give a new path")
    model, spec, scaler = load_for_inference(store.resolve(ckpt_path, log_dir, prefer="best"))
    x, ids = read_inputs(input, spec)
    frame = pd.concat([ids, predict_frame(model, spec, scaler, x)], axis=1)
    files.write_with(out, lambda path: frame.to_csv(path, index=False))
    log.info("%d predictions written to %s", len(frame), out)
    return frame
