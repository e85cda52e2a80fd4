"""Predictions from a checkpoint alone: new inputs are preprocessed with the state saved in it
(columns, one-hot encoding, scaler, image size and pixel range); no training data is read."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from litlab.checkpoints import store
from litlab.compat import datamodule_state
from litlab.data.csv import read_table
from litlab.data.scaling import Scaler
from litlab.errors import UserError
from litlab.models import SupervisedModule
from litlab.run.outputs import outputs_frame
from litlab.task import Task

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def load_for_inference(ckpt_path: str | Path) -> tuple[SupervisedModule, dict]:
    """The trained model (eval mode, CPU) and the DataModule's state (litlab.data.base.state_dict)."""
    classes, ckpt = store.checkpoint_classes(ckpt_path)
    state = datamodule_state(ckpt, classes["datamodule_class"])
    model_class = store.recorded_class(classes, "model_class", SupervisedModule)
    model = model_class.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
    return model.eval(), state


def read_inputs(path: str | Path, state: dict) -> tuple[torch.Tensor, pd.DataFrame]:
    """Raw inputs (N, ...) as the training data held them, and an id column per input
    (`row` of a CSV or .npy, `file` of an image)."""
    path = Path(path)
    shape = tuple(state["input_shape"])
    if path.is_dir():
        return read_image_folder(path, shape, state["pixel_max"])
    if path.suffix == ".npy":
        return read_npy(path, shape)
    if path.suffix == ".csv":
        if state["input_columns"] is None:
            raise UserError(
                f"input={str(path)!r}: this model was trained on images of shape {shape}; "
                "give a folder of PNG/JPG files or a .npy array"
            )
        x = read_csv(path, state)
        return x, pd.DataFrame({"row": np.arange(len(x))})
    raise UserError(
        f"input={str(path)!r} is not a folder of images, a .npy file or a .csv file"
        + ("" if path.exists() else " (no such file or dir)")
    )


def read_csv(path: Path, state: dict) -> torch.Tensor:
    """The training feature columns of `path`, one-hot encoded as in training."""
    df = read_table(str(path), key="input")
    expected, categorical = state["input_columns"], state["categorical_columns"]
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
    unseen = [c for c in features.columns if c not in state["feature_names"]]
    if unseen:  # a category training never saw: all its one-hot columns stay 0
        log.warning("categories not seen in training (encoded as all-zero): %s", unseen)
    features = features.reindex(columns=state["feature_names"], fill_value=0.0)
    return torch.as_tensor(features.to_numpy(dtype="float32"))


def read_npy(path: Path, shape: tuple[int, ...]) -> tuple[torch.Tensor, pd.DataFrame]:
    x = np.load(path)
    if x.ndim == len(shape) and len(shape) == 3 and shape[0] == 1:  # (N, H, W) for one channel
        x = x[:, None]
    if tuple(x.shape[1:]) != shape:
        alt = f" or (N, {shape[1]}, {shape[2]})" if len(shape) == 3 and shape[0] == 1 else ""
        expected = f"(N, {', '.join(map(str, shape))}){alt}"
        raise UserError(f"input={str(path)!r} has shape {tuple(x.shape)}; this model expects {expected}")
    tensor = torch.as_tensor(x if x.dtype == np.uint8 else x.astype("float32"))
    return tensor, pd.DataFrame({"row": np.arange(len(x))})


def read_image_folder(
    folder: Path, shape: tuple[int, ...], pixel_max: float | None
) -> tuple[torch.Tensor, pd.DataFrame]:
    """Every image file in `folder`, converted to the training's channels and (H, W) size,
    with pixels rescaled from 0..255 to the training data's range."""
    if len(shape) != 3:
        raise UserError(
            f"input={str(folder)!r} is a folder of images, but this model takes {shape[0]} features; give a .csv"
        )
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"input={str(folder)!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    channels, height, width = shape
    images = []
    for f in files:
        with Image.open(f) as opened:
            im = opened.convert("L" if channels == 1 else "RGB")
            if im.size != (width, height):
                im = im.resize((width, height), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
        images.append(a[None] if channels == 1 else a.transpose(2, 0, 1))  # (C, H, W)
    x = torch.as_tensor(np.stack(images))
    if pixel_max is not None and pixel_max != 255.0:  # e.g. digits, whose pixels run 0..16
        x = x.float() * (pixel_max / 255.0)
    return x, pd.DataFrame({"file": [f.name for f in files]})


@torch.no_grad()
def predict_frame(model: SupervisedModule, state: dict, x: torch.Tensor, batch_size: int = 1024) -> pd.DataFrame:
    """Class, label and probabilities (classification) or the value (regression) per input."""
    scaler = Scaler(state["scaler"]["method"])
    scaler.load_state_dict(state["scaler"])
    outputs = [model.predict_outputs(model(scaler(x[i : i + batch_size]))) for i in range(0, len(x), batch_size)]
    return outputs_frame(torch.cat(outputs), Task.parse(state["task"]), state["class_names"])


def predict(ckpt_path: str, input: str, output: str, log_dir: str = "logs") -> pd.DataFrame:
    """Write the predictions for `input` to the CSV file `output`; return them."""
    out = Path(output)
    if out.exists():
        raise UserError(f"output={output!r} exists; predict.py does not overwrite files, give a new path")
    model, state = load_for_inference(store.resolve(ckpt_path, log_dir, prefer="best"))
    x, ids = read_inputs(input, state)
    frame = pd.concat([ids, predict_frame(model, state, x)], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    log.info("%d predictions written to %s", len(frame), out)
    return frame
