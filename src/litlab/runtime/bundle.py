"""A bundle: the folder export.py writes, read back for prediction. bundle.json holds the network file's
name and format, the data contract (the DataSpec, in its one form) and the scaler's statistics beside it,
and what the graph computes; nothing in it is unpickled."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litlab.data_spec import DataSpec, ScalerStats
from litlab.errors import UserError
from litlab.runtime.bundle_json import LAYOUTS, Invalid, read_contract
from litlab.values import is_int

BUNDLE_JSON = "bundle.json"
PARITY_JSON = "parity.json"
BUNDLE_VERSION = 2  # bundle.json's layout as export.py writes it; a reader reads every layout of LAYOUTS
REEXPORT = "export the model again (litlab export ckpt_path=RUN)"


@dataclass(frozen=True)
class Bundle:
    """An exported model's folder: the network file and its format, the data contract and scaler of the run
    it was trained in, and the rest of bundle.json (`info`: temperature, graph_applies, versions, source)."""

    folder: Path
    format: str
    file: str
    spec: DataSpec
    scaler: ScalerStats
    version: int  # bundle.json's bundle_version
    info: dict[str, Any]

    @property
    def network(self) -> Path:
        return self.folder / self.file

    def field(self, name: str) -> str:
        """Where the DataSpec's or scaler's field `name` is in this bundle.json ("data.input_shape")."""
        return LAYOUTS[self.version][name]


def read_bundle(folder: str | Path, key: str = "bundle") -> Bundle:
    """The bundle in `folder`, its bundle.json checked field by field and against itself; one line naming
    what is wrong otherwise."""
    folder = Path(folder)
    where = f"{key}={str(folder)!r}"
    state = read_state(folder, where)
    version = state["bundle_version"]
    try:
        spec, scaler = read_contract(state, version)
    except Invalid as e:
        raise UserError(f"{where}: {BUNDLE_JSON}'s {e}; {REEXPORT}") from None
    bundle = Bundle(folder, state["format"], state["file"], spec, scaler, version, state)
    if not bundle.network.is_file():
        raise UserError(f"{where}: the network file {bundle.file} is missing; {REEXPORT}")
    return bundle


def read_state(folder: Path, where: str) -> dict[str, Any]:
    """bundle.json's object, of a bundle_version this litlab reads."""
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
    version = state.get("bundle_version") if isinstance(state, dict) else None
    if not is_int(version) or version not in LAYOUTS:  # is_int: true, which equals 1, is no version
        readable = " and ".join(map(str, sorted(LAYOUTS)))
        raise UserError(
            f"{where}: {BUNDLE_JSON} is of bundle_version {version!r}, this litlab reads {readable}; {REEXPORT}"
        )
    return state
