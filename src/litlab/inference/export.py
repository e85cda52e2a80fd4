"""export.py: a checkpoint's network written as ONNX or torch.export, with bundle.json (everything
prediction needs outside litlab: the data contract, the scaler's statistics, what the graph computes)
and parity.json (the test split through the checkpoint and through the bundle as predict.py reads it).
A bundle appears whole or not at all: it is written to a hidden folder beside `out` and renamed into
place only once parity holds."""

import errno
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from litlab import files
from litlab.checkpoints import store
from litlab.data_spec import Task
from litlab.errors import UserError
from litlab.inference import parity
from litlab.inference.checkpoint import TorchPredictor
from litlab.inference.formats import EXPORTERS, INPUT, OUTPUT, Exporter, Format, Outputs, versions
from litlab.inference.recipe import raw_inputs
from litlab.inference.restore import Restored, restore
from litlab.review.console import quiet_third_party
from litlab.runtime.bundle import BUNDLE_JSON, BUNDLE_VERSION, PARITY_JSON, read_bundle
from litlab.values import is_number

log = logging.getLogger(__name__)

# What the graph computes after the network, by task (bundle.json's `graph_applies`): no runtime
# step is left but the argmax of the probabilities.
GRAPH_APPLIES = {
    Task.MULTICLASS: "softmax(logits / temperature): class probabilities (N, C)",
    Task.BINARY: "sigmoid(logit / temperature) as [1 - p, p]: class probabilities (N, 2)",
    Task.REGRESSION: "value * data.target_std + data.target_mean: the target in its own units (N,)",
}


def export(ckpt_path: str, format: str, out: str | Path, log_dir: str = "logs", tolerance: object = 1e-4) -> Path:
    """Write the bundle of `ckpt_path` to the new folder `out`; return it. `tolerance`: for regression, the
    largest difference allowed between PyTorch's and the exported value, as a fraction of the target's std."""
    quiet_third_party()
    exporter, out = EXPORTERS[Format.parse(format)], checked_out(out)
    allowed = checked_tolerance(tolerance)
    path = store.resolve(ckpt_path, log_dir, prefer="best")
    restored = restore(path)
    x = restored.datamodule().split_tensors("test").x.numpy()  # raw, as the DataModule holds it
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        example = torch.from_numpy(restored.scaler.apply(x[:2]))
        exporter.write(Outputs(restored.model), example, staging / exporter.file)
        files.write_json(staging / BUNDLE_JSON, bundle_json(restored, Format(format), exporter, path))
        found = parity_of(restored, exporter, staging, x)
        reason = parity.refusal(found, restored.spec.task, allowed * float(restored.model.target_std))
        if reason is not None:
            raise UserError(reason)
        files.write_json(staging / PARITY_JSON, found)
        into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("bundle written to %s; parity with the checkpoint %s", out, parity.summary(found))
    return out


def into_place(staging: Path, out: Path) -> None:
    """The whole bundle at once. Another export to the same `out` that got there first keeps it."""
    try:
        staging.rename(out)
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        raise UserError(
            f"out={str(out)!r} was written by another export while this one ran; it is kept as it is, "
            "give this export a new folder"
        ) from None


def checked_out(out: str | Path) -> Path:
    """`out` as a new folder: an existing bundle (or anything else there) is never overwritten."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise UserError(f"out={str(out)!r} exists; export.py does not overwrite a bundle, give a new folder")
    files.check_in_a_folder(out, "out")
    return out


def checked_tolerance(tolerance: object) -> float:
    """A finite number >= 0 (a fraction of the target's std)."""
    if not is_number(tolerance) or not 0 <= tolerance < math.inf:
        raise UserError(
            f"tolerance={tolerance!r} is not a tolerance; give a number >= 0, the largest difference allowed "
            "as a fraction of the target's std, e.g. 1e-4"
        )
    return float(tolerance)


def parity_of(restored: Restored, exporter: Exporter, staging: Path, x: np.ndarray) -> dict:
    """The checkpoint's predictions of the raw test split `x` against the staged bundle's, run by the predictor
    users run (runtime.onnx_model.OnnxPredictor for ONNX) from its bundle.json as predict.py reads it."""
    exported = exporter.load(read_bundle(staging, key="out"))
    return {**parity.measure(TorchPredictor(restored), exported, x), "runtime": exporter.runtime}


def bundle_json(restored: Restored, format: Format, exporter: Exporter, ckpt: Path) -> dict[str, Any]:
    """bundle.json (runtime.bundle_json.LAYOUTS[2]): the data contract in its one form (`DataSpec.to_state`) and
    the scaler's statistics beside it; the graph's input and output, what it applies after the network."""
    spec = restored.spec
    return {
        "bundle_version": BUNDLE_VERSION,
        "format": format.value,
        "file": exporter.file,
        "raw_inputs": raw_inputs(spec),  # from the user's files to the raw inputs, for a program without litlab
        "input": {"name": INPUT, "dtype": "float32", "shape": ["N", *spec.input_shape],
                  "is": "(raw inputs - scaler.shift) / scaler.scale"},
        "output": {"name": OUTPUT},
        "graph_applies": GRAPH_APPLIES[spec.task],
        "temperature": float(restored.model.temperature),
        "data": spec.to_state(),
        "scaler": restored.scaler.to_state(),
        "versions": versions("litlab", *exporter.packages),
        "source": {"ckpt_path": str(ckpt)},
    }  # fmt: skip
