"""bundle.json checked before anything of it is used: the type of every field prediction reads, and
the fields against each other (the input shape against the columns or the image size, the scaler's
statistics against the input shape, the class names against the task). A hand-edited or damaged
file is then one line naming the field and the two values, never a traceback deep in numpy."""

import math
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

import numpy as np

from litlab.data_spec import InputKind, Task
from litlab.values import is_int


class Invalid(ValueError):
    """What is wrong with one field: `<field> is <value>, ...` (read_bundle adds the folder and the fix)."""


def at(state: dict[str, Any], path: str) -> Any:
    """The value at the dotted `path` ("preprocessing.scaler.shift")."""
    value: Any = state
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise Invalid(f"{path} is missing")
        value = value[part]
    return value


def strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def plain_name(value: Any) -> bool:
    """A file name in the bundle's own folder: no folder part, so it cannot point outside it."""
    return isinstance(value, str) and value not in ("", ".", "..") and PurePath(value).name == value


def class_list(value: Any) -> bool:
    """null, or two or more distinct names: the answers name each class by its label."""
    return value is None or (strings(value) and len(value) >= 2 and len(set(value)) == len(value))


def number(value: Any) -> bool:
    """A finite number (JSON's NaN and Infinity, which Python's json reads, are not)."""
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def numbers(value: Any) -> bool:
    """A nested list of finite numbers (the scaler's statistics, as ndarray.tolist() wrote them)."""
    if isinstance(value, list):
        return len(value) > 0 and all(numbers(v) for v in value)
    return number(value)


def shape_of(value: Any) -> tuple[int, ...] | None:
    """The array shape of nested lists, or None where they are ragged."""
    try:
        return np.asarray(value, dtype=np.float64).shape
    except ValueError:
        return None


def optional_dict(value: Any) -> bool:
    return value is None or isinstance(value, dict)


# (field, test, what is valid): every field prediction reads, by its type.
FIELDS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("format", lambda v: isinstance(v, str), "a string, onnx or torch_export"),
    ("file", plain_name, "a file name in the bundle's folder"),
    ("preprocessing.task", lambda v: v in {t.value for t in Task}, f"one of {[t.value for t in Task]}"),
    ("preprocessing.kind", lambda v: v in {k.value for k in InputKind}, f"one of {[k.value for k in InputKind]}"),
    (
        "preprocessing.input_shape",
        lambda v: isinstance(v, list) and len(v) in (1, 3) and all(is_int(d) and d > 0 for d in v),
        "[F] features or [C, H, W] pixels, positive integers",
    ),
    ("preprocessing.class_names", class_list, "null or a list of 2 or more distinct strings"),
    ("preprocessing.scaler.method", lambda v: isinstance(v, str), "a string"),
    ("preprocessing.scaler.shift", numbers, "a list of finite numbers"),
    ("preprocessing.scaler.scale", numbers, "a list of finite numbers"),
    ("preprocessing.columns", optional_dict, "null (images) or an object (tables)"),
    ("preprocessing.image", optional_dict, "null (tables) or an object (images)"),
)


def check_state(state: dict[str, Any]) -> None:
    """Every field's type, then the fields against each other; Invalid names the first that is wrong."""
    for path, test, valid in FIELDS:
        value = at(state, path)
        if not test(value):
            raise Invalid(f"{path} is {short(value)}; valid: {valid}")
    prep = state["preprocessing"]
    shape = prep["input_shape"]
    if len(shape) != InputKind(prep["kind"]).dims:
        raise Invalid(f"preprocessing.input_shape is {shape}, which a {prep['kind']} input cannot have")
    check_classes(Task(prep["task"]), prep["class_names"])
    KIND_CHECKS[InputKind(prep["kind"])](prep, shape)
    check_scaler(prep["scaler"], shape, InputKind(prep["kind"]))


def check_classes(task: Task, names: list[str] | None) -> None:
    if task is Task.REGRESSION and names is not None:
        raise Invalid(f"preprocessing.class_names is {short(names)}, but a regression model has no classes")
    if task is Task.BINARY and names is not None and len(names) != 2:
        raise Invalid(f"preprocessing.class_names has {len(names)} names, but a binary model has 2 classes")


def check_scaler(scaler: dict[str, Any], shape: list[int], kind: InputKind) -> None:
    """(F,) for tables, (C, 1, 1) for images, or (1,) for scaling none; no scale of 0 (a division by it)."""
    expected = (shape[0],) if kind is InputKind.TABLE else (shape[0], 1, 1)
    allowed = {expected, (1,)} if scaler["method"] == "none" else {expected}
    for name in ("shift", "scale"):
        found = shape_of(scaler[name])
        if found not in allowed:
            raise Invalid(
                f"preprocessing.scaler.{name} has shape {found}, but the input shape {shape} needs {expected}"
            )
    if (np.asarray(scaler["scale"], dtype=np.float64) == 0).any():
        raise Invalid("preprocessing.scaler.scale holds 0, which scaling would divide by")


def check_table(prep: dict[str, Any], shape: list[int]) -> None:
    """The columns: lists of names, the features as wide as the input, one-hot maps onto the features."""
    columns = prep["columns"]
    if columns is None:
        raise Invalid("preprocessing.columns is null, but a table model reads its inputs by column")
    for name in ("inputs", "categorical", "features"):
        if not strings(at(columns, name)):
            raise Invalid(f"preprocessing.columns.{name} is {short(columns[name])}; valid: a list of strings")
    if len(columns["features"]) != shape[0]:
        raise Invalid(
            f"preprocessing.columns.features has {len(columns['features'])} names, but "
            f"preprocessing.input_shape is {shape}"
        )
    one_hot, features = at(columns, "one_hot"), set(columns["features"])
    valid = isinstance(one_hot, dict) and set(one_hot) == set(columns["categorical"])
    if not valid or not all(isinstance(m, dict) and set(m.values()) <= features for m in one_hot.values()):
        raise Invalid(
            f"preprocessing.columns.one_hot is {short(one_hot)}; valid: per categorical column, an object "
            "of category: feature name"
        )
    numeric = [c for c in columns["inputs"] if c not in columns["categorical"]]
    if not set(numeric) <= features or not set(columns["categorical"]) <= set(columns["inputs"]):
        raise Invalid("preprocessing.columns' inputs, categorical and features do not match each other")


def check_image(prep: dict[str, Any], shape: list[int]) -> None:
    """The image record agrees with the input shape; 1 (gray) or 3 (RGB) channels; a positive pixel_max."""
    image = prep["image"]
    if image is None:
        raise Invalid("preprocessing.image is null, but an image model needs its channels and size")
    if shape[0] not in (1, 3):
        raise Invalid(f"preprocessing.input_shape is {shape}; an image model has 1 or 3 channels")
    recorded = [at(image, "channels"), *at(image, "size")] if isinstance(at(image, "size"), list) else None
    if recorded != shape:
        raise Invalid(
            f"preprocessing.image (channels {short(image['channels'])}, size {short(image['size'])}) does not "
            f"match preprocessing.input_shape {shape}"
        )
    pixel_max = at(image, "pixel_max")
    if pixel_max is not None and not (number(pixel_max) and pixel_max > 0):
        raise Invalid(f"preprocessing.image.pixel_max is {short(pixel_max)}; valid: null or a positive number")


KIND_CHECKS: dict[InputKind, Callable[[dict[str, Any], list[int]], None]] = {
    InputKind.TABLE: check_table,
    InputKind.IMAGE: check_image,
}


def short(value: Any, limit: int = 60) -> str:
    """A value as the message shows it: its repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
