"""What prediction needs besides the network: the preprocessing (task, input kind and shape, columns
and one-hot maps, image size and pixel range, the scaler's statistics, classes), read from a
checkpoint's DataSpec and Scaler (run.predict) or from a bundle's bundle.json, and the bundle itself."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litlab.data_spec import InputKind, TableColumns, Task
from litlab.errors import UserError
from litlab.runtime.bundle_json import Invalid, check_state

BUNDLE_JSON = "bundle.json"
PARITY_JSON = "parity.json"
BUNDLE_VERSION = 1  # bundle.json's layout; a reader refuses any other
REEXPORT = "export the model again (python export.py ckpt_path=RUN)"


@dataclass(frozen=True)
class Preprocessing:
    """How raw inputs become the network's input, and what its outputs mean. `shift`/`scale`: the
    scaler's statistics, (F,) for tables or (C, 1, 1) for images, applied as (x - shift) / scale."""

    task: Task
    kind: InputKind
    input_shape: tuple[int, ...]  # (F,) or (C, H, W)
    class_names: tuple[str, ...] | None
    scaling: str
    shift: np.ndarray
    scale: np.ndarray
    columns: TableColumns | None = None
    pixel_max: float | None = None  # images: the brightest raw pixel value in training (255 for files)

    def to_json(self) -> dict[str, Any]:
        columns = self.columns
        return {
            "task": self.task.value,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "class_names": list(self.class_names) if self.class_names is not None else None,
            "scaler": {"method": self.scaling, "shift": self.shift.tolist(), "scale": self.scale.tolist()},
            "columns": None
            if columns is None
            else {
                "inputs": list(columns.inputs),
                "categorical": list(columns.categorical),
                "features": list(columns.features),
                "one_hot": columns.one_hot,
            },
            "image": None
            if self.kind is not InputKind.IMAGE
            else {"channels": self.input_shape[0], "size": list(self.input_shape[1:]), "pixel_max": self.pixel_max},
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> "Preprocessing":
        columns, scaler, image = state["columns"], state["scaler"], state.get("image") or {}
        return cls(
            task=Task(state["task"]),
            kind=InputKind(state["kind"]),
            input_shape=tuple(state["input_shape"]),
            class_names=tuple(state["class_names"]) if state["class_names"] is not None else None,
            scaling=scaler["method"],
            shift=np.asarray(scaler["shift"], dtype=np.float32),
            scale=np.asarray(scaler["scale"], dtype=np.float32),
            columns=None
            if columns is None
            else TableColumns(
                tuple(columns["inputs"]), tuple(columns["categorical"]), tuple(columns["features"]), columns["one_hot"]
            ),
            pixel_max=image.get("pixel_max"),
        )


@dataclass(frozen=True)
class Bundle:
    """An exported model's folder: the network file, its format, its preprocessing, and what the graph
    computes after the network (`graph_applies`)."""

    folder: Path
    format: str
    file: str
    preprocessing: Preprocessing
    info: dict[str, Any]  # the rest of bundle.json: temperature, target mean/std, versions, source

    @property
    def network(self) -> Path:
        return self.folder / self.file


def read_bundle(folder: str | Path, key: str = "bundle") -> Bundle:
    """The bundle in `folder` (JSON only: nothing is unpickled), its bundle.json checked field by field
    and against itself; one line naming what is wrong otherwise."""
    folder = Path(folder)
    where = f"{key}={str(folder)!r}"
    state = read_state(folder, where)
    try:
        check_state(state)
    except Invalid as e:
        raise UserError(f"{where}: {BUNDLE_JSON}'s {e}; {REEXPORT}") from None
    bundle = Bundle(folder, state["format"], state["file"], Preprocessing.from_json(state["preprocessing"]), state)
    if not bundle.network.is_file():
        raise UserError(f"{where}: the network file {bundle.file} is missing; {REEXPORT}")
    return bundle


def read_state(folder: Path, where: str) -> dict[str, Any]:
    """bundle.json's object, of this litlab's bundle_version."""
    if not folder.is_dir():
        found = "does not exist" if not folder.exists() else "is a file, not a folder"
        raise UserError(f"{where} {found}; give the folder export.py wrote (it holds {BUNDLE_JSON})")
    path = folder / BUNDLE_JSON
    if not path.is_file():
        raise UserError(f"{where} holds no {BUNDLE_JSON}; give a folder written by export.py")
    try:
        state = json.loads(path.read_bytes())
    except (ValueError, OSError) as e:  # not JSON, not UTF-8, unreadable
        raise UserError(f"{where}: {BUNDLE_JSON} is not JSON ({e}); {REEXPORT}") from None
    if not isinstance(state, dict) or state.get("bundle_version") != BUNDLE_VERSION:
        version = state.get("bundle_version") if isinstance(state, dict) else None
        raise UserError(
            f"{where}: {BUNDLE_JSON} is of bundle_version {version!r}, this litlab reads {BUNDLE_VERSION}; {REEXPORT}"
        )
    return state
