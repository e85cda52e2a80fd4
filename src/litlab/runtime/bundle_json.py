"""bundle.json checked before anything of it is used: the type of every field prediction reads, and
the fields against each other (the input shape against the columns, the scaler's statistics against
the input shape, the class names against the task). A hand-edited or damaged file is then one line
naming the field and the two values, never a traceback deep in numpy.

The fields sit where the file's bundle_version put them (LAYOUTS): version 2 holds the DataSpec's own
form (`DataSpec.to_state`) under `data` and the scaler's statistics beside it under `scaler`; version 1
held a copy of the spec's fields under `preprocessing`. Either is read into one DataSpec and ScalerStats,
and a field is named in errors by its place in the file at hand."""

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import PurePath
from typing import Any

import numpy as np

from litlab.data_spec import DataSpec, InputKind, ScalerStats, Task
from litlab.values import is_int


class Invalid(ValueError):
    """What is wrong with one field: `<field> is <value>, ...` (read_bundle adds the folder and the fix)."""


SCALER = ("method", "shift", "scale")
# Where each field is, by bundle_version: a DataSpec field, a ScalerStats field, or bundle.json's own.
# Version 1 had no target_name, train_size or class_counts: they read as the DataSpec's defaults.
LAYOUTS: dict[int, dict[str, str]] = {
    2: {
        "format": "format",
        "file": "file",
        **{f.name: f"data.{f.name}" for f in fields(DataSpec)},
        **{name: f"scaler.{name}" for name in SCALER},
    },
    1: {
        "format": "format",
        "file": "file",
        **{name: f"preprocessing.{name}" for name in ("task", "kind", "input_shape", "class_names", "columns")},
        "pixel_max": "preprocessing.image.pixel_max",
        "target_mean": "target_mean",
        "target_std": "target_std",
        **{name: f"preprocessing.scaler.{name}" for name in SCALER},
    },
}


def at(state: dict[str, Any], path: str) -> Any:
    """The value at the dotted `path` ("scaler.shift")."""
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


def positive(value: Any) -> bool:
    return number(value) and value > 0


def numbers(value: Any) -> bool:
    """A nested list of finite numbers (the scaler's statistics, as ndarray.tolist() wrote them)."""
    if isinstance(value, list):
        return len(value) > 0 and all(numbers(v) for v in value)
    return number(value)


def counts(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(is_int(v) and v >= 0 for v in value))


def shape_of(value: Any) -> tuple[int, ...] | None:
    """The array shape of nested lists, or None where they are ragged."""
    try:
        return np.asarray(value, dtype=np.float64).shape
    except ValueError:
        return None


@dataclass(frozen=True)
class Field:
    """One field prediction reads: its test and what is valid. `optional`: a file without it (of an
    older bundle_version, or a spec field the layout does not hold) reads as the DataSpec's default."""

    name: str
    test: Callable[[Any], bool]
    valid: str
    optional: bool = False


FIELDS: tuple[Field, ...] = (
    Field("format", lambda v: isinstance(v, str), "a string, onnx or torch_export"),
    Field("file", plain_name, "a file name in the bundle's folder"),
    Field("task", lambda v: v in {t.value for t in Task}, f"one of {[t.value for t in Task]}"),
    Field("kind", lambda v: v in {k.value for k in InputKind}, f"one of {[k.value for k in InputKind]}"),
    Field(
        "input_shape",
        lambda v: isinstance(v, list) and len(v) in (1, 3) and all(is_int(d) and d > 0 for d in v),
        "[F] features or [C, H, W] pixels, positive integers",
    ),
    Field("class_names", class_list, "null or a list of 2 or more distinct strings"),
    Field("columns", lambda v: v is None or isinstance(v, dict), "null (images) or an object (tables)"),
    Field("pixel_max", lambda v: v is None or positive(v), "null or a positive number", optional=True),
    Field("target_name", lambda v: isinstance(v, str), "a string", optional=True),
    Field("train_size", lambda v: is_int(v) and v >= 0, "an integer >= 0", optional=True),
    Field("target_mean", number, "a finite number", optional=True),
    Field("target_std", positive, "a positive number", optional=True),
    Field("class_counts", counts, "null or a list of integers >= 0", optional=True),
    Field("method", lambda v: isinstance(v, str), "a string"),
    Field("shift", numbers, "a list of finite numbers"),
    Field("scale", numbers, "a list of finite numbers"),
)


def checked_fields(state: dict[str, Any], layout: dict[str, str]) -> dict[str, Any]:
    """Every field's value by its name, each of its type; an optional one the file lacks left out."""
    found: dict[str, Any] = {}
    for field in FIELDS:
        path = layout.get(field.name)
        if path is None:  # not in this bundle_version
            continue
        try:
            value = at(state, path)
        except Invalid:
            if field.optional:
                continue
            raise
        if not field.test(value):
            raise Invalid(f"{path} is {short(value)}; valid: {field.valid}")
        found[field.name] = value
    return found


def read_contract(state: dict[str, Any], version: int) -> tuple[DataSpec, ScalerStats]:
    """The DataSpec and the scaler's statistics of a bundle.json of `version` (a key of LAYOUTS), every field
    checked alone and against the others first."""
    names = LAYOUTS[version]
    values = checked_fields(state, names)
    shape, kind = values["input_shape"], InputKind(values["kind"])
    if len(shape) != kind.dims:
        raise Invalid(f"{names['input_shape']} is {shape}, which a {kind} input cannot have")
    check_classes(Task(values["task"]), values["class_names"], names["class_names"])
    KIND_CHECKS[kind](values, names)
    check_scaler(values, names, kind)
    return DataSpec.from_state(values), ScalerStats.from_state({k: values[k] for k in SCALER})


def check_classes(task: Task, names: list[str] | None, path: str) -> None:
    if task is Task.REGRESSION and names is not None:
        raise Invalid(f"{path} is {short(names)}, but a regression model has no classes")
    if task.is_classification and names is None:
        raise Invalid(f"{path} is null, but a {task} model names its classes")
    if task is Task.BINARY and names is not None and len(names) != 2:
        raise Invalid(f"{path} has {len(names)} names, but a binary model has 2 classes")


def check_scaler(values: dict[str, Any], names: dict[str, str], kind: InputKind) -> None:
    """(F,) for tables, (C, 1, 1) for images, or (1,) for scaling none; no scale of 0 (a division by it)."""
    shape = values["input_shape"]
    expected = (shape[0],) if kind is InputKind.TABLE else (shape[0], 1, 1)
    allowed = {expected, (1,)} if values["method"] == "none" else {expected}
    for name in ("shift", "scale"):
        found = shape_of(values[name])
        if found not in allowed:
            raise Invalid(f"{names[name]} has shape {found}, but the input shape {shape} needs {expected}")
    if (np.asarray(values["scale"], dtype=np.float64) == 0).any():
        raise Invalid(f"{names['scale']} holds 0, which scaling would divide by")


def check_table(values: dict[str, Any], names: dict[str, str]) -> None:
    """The columns: lists of names, the features as wide as the input, the inputs and features agreeing."""
    columns, where, shape = values["columns"], names["columns"], values["input_shape"]
    if columns is None:
        raise Invalid(f"{where} is null, but a table model reads its inputs by column")
    for name in ("inputs", "categorical", "features"):
        if not strings(columns.get(name)):
            raise Invalid(f"{where}.{name} is {short(columns.get(name))}; valid: a list of strings")
    if len(columns["features"]) != shape[0]:
        raise Invalid(f"{where}.features has {len(columns['features'])} names, but {names['input_shape']} is {shape}")
    numeric = [c for c in columns["inputs"] if c not in columns["categorical"]]
    if not set(numeric) <= set(columns["features"]) or not set(columns["categorical"]) <= set(columns["inputs"]):
        raise Invalid(f"{where}' inputs, categorical and features do not match each other")


def check_image(values: dict[str, Any], names: dict[str, str]) -> None:
    """1 (gray) or 3 (RGB) channels, and no columns: an image model reads image files and arrays."""
    shape = values["input_shape"]
    if shape[0] not in (1, 3):
        raise Invalid(f"{names['input_shape']} is {shape}; an image model has 1 or 3 channels")
    if values["columns"] is not None:
        raise Invalid(f"{names['columns']} is {short(values['columns'])}, but an image model reads no columns")


KIND_CHECKS: dict[InputKind, Callable[[dict[str, Any], dict[str, str]], None]] = {
    InputKind.TABLE: check_table,
    InputKind.IMAGE: check_image,
}


def short(value: Any, limit: int = 60) -> str:
    """A value as the message shows it: its repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
