"""New inputs for a model, read as training held them, by its DataSpec: the one owner
of prediction's input reading, shared by the checkpoint path (inference/checkpoint.py), a bundle (predict.py
bundle=DIR) and the server (runtime/server.py)."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from litlab.data_spec import DataSpec, InputKind
from litlab.errors import UserError
from litlab.readers import images, tables

NUMERIC = "biuf"  # numpy dtype kinds a .npy of inputs may hold: bool, signed and unsigned integers, floats


def read_inputs(path: str | Path, spec: DataSpec) -> tuple[np.ndarray, pd.DataFrame]:
    """Raw inputs (N, ...) as the training data held them, and an id column per input
    (`row` of a CSV or .npy, `file` of an image); at least one, every value finite."""
    path = Path(path)
    if path.is_dir():
        x, ids = read_image_folder(path, spec)
    else:
        reader = READERS.get(path.suffix)
        if reader is None:
            raise UserError(
                f"input={str(path)!r} is not a folder of images, a .npy file or a .csv file"
                + ("" if path.exists() else " (no such file or dir)")
            )
        x = reader(path, spec)
        ids = pd.DataFrame({"row": np.arange(len(x))})
    return checked(x, spec, f"input={str(path)!r}"), ids


def checked(x: np.ndarray, spec: DataSpec, where: str) -> np.ndarray:
    """`x` itself, refused when it holds no input or a value that is not finite (inf, NaN): the
    network would answer NaN for it, and a NaN is no prediction."""
    if len(x) == 0:
        raise UserError(f"{where} holds no inputs (0 rows); give at least one")
    bad = ~np.isfinite(x).reshape(len(x), -1) if x.dtype.kind == "f" else np.zeros((1, 1), bool)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        features = spec.columns.features if spec.columns is not None else None
        columns = "" if features is None else f" in {[features[j] for j in np.flatnonzero(bad.any(axis=0))]}"
        raise UserError(
            f"{where} has values that are not finite (inf or NaN){columns}, in {len(rows)} input(s), the first "
            f"at row {rows[0]}; give finite numbers"
        )
    return x


def read_csv(path: Path, spec: DataSpec) -> np.ndarray:
    """The training feature columns of `path`, one-hot encoded as in training."""
    if spec.columns is None:
        raise UserError(
            f"input={str(path)!r}: this model was trained on images of shape {spec.input_shape}; "
            f"give a folder of images ({'/'.join(images.IMAGE_SUFFIXES)}) or a .npy array"
        )
    table = tables.read_table(str(path), key="input")
    if table.empty:  # a header alone: its columns read as text, and there is nothing to predict
        raise UserError(f"input={str(path)!r} holds no inputs (0 rows); give at least one")
    return tables.features(table, spec.columns, f"input={str(path)!r}")


def read_npy(path: Path, spec: DataSpec) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)  # a file of pickled objects could run code
    except (ValueError, OSError, EOFError) as e:
        raise UserError(
            f"input={str(path)!r} is not a plain numeric .npy array ({str(e).splitlines()[0]}); save it with "
            "np.save(path, array) from a numeric array (no objects)"
        ) from None
    if not isinstance(x, np.ndarray) or x.dtype.kind not in NUMERIC:
        found = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise UserError(f"input={str(path)!r} holds {found} values; save a numeric array (integers or floats)")
    shape, given = spec.input_shape, tuple(x.shape)
    one_channel = spec.kind is InputKind.IMAGE and shape[0] == 1
    if one_channel and x.ndim == 3:  # (N, H, W) for one channel
        x = x[:, None]
    if tuple(x.shape[1:]) != shape:
        alt = f" or (N, {shape[1]}, {shape[2]})" if one_channel else ""
        expected = f"(N, {', '.join(map(str, shape))}){alt}"
        raise UserError(f"input={str(path)!r} has shape {given}; this model expects {expected}")
    return x if x.dtype == np.uint8 else x.astype(np.float32)


READERS: dict[str, Callable[[Path, DataSpec], np.ndarray]] = {".csv": read_csv, ".npy": read_npy}


def read_image_folder(folder: Path, spec: DataSpec) -> tuple[np.ndarray, pd.DataFrame]:
    """Every image file in `folder`, converted to the training's channels and (H, W) size,
    with pixels rescaled from 0..255 to the training data's range."""
    if spec.kind is not InputKind.IMAGE:
        raise UserError(
            f"input={str(folder)!r} is a folder of images, but this model takes {spec.input_shape[0]} features; "
            "give a .csv"
        )
    files = images.images_in(folder)
    if not files:
        raise UserError(f"input={str(folder)!r} holds no image files ({', '.join(images.IMAGE_SUFFIXES)})")
    return image_batch([(f.read_bytes(), f"input: {f}") for f in files], spec), pd.DataFrame(
        {"file": [f.name for f in files]}
    )


def image_batch(encoded: list[tuple[bytes, str]], spec: DataSpec) -> np.ndarray:
    """(N, C, H, W): each (file contents, name for errors) decoded, converted and resized as
    data=image_folder does in training, in the training data's pixel range."""
    channels, height, width = spec.input_shape
    x = np.stack([images.conform(images.decode(data, name), channels, (height, width)) for data, name in encoded])
    return images.in_training_range(x, spec.pixel_max)


def expects(spec: DataSpec) -> str:
    """What a request for this model holds, for error messages."""
    if spec.columns is not None:
        return f"rows of the columns {list(spec.columns.inputs)}"
    return f"images (resized to {spec.input_shape[1]}x{spec.input_shape[2]})"
