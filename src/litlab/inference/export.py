"""export.py: a checkpoint's network written as ONNX or torch.export, with bundle.json (everything
prediction needs outside litlab) and parity.json (the test split through PyTorch and the exported file).
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
from litlab.inference.checkpoint import TorchPredictor, preprocessing
from litlab.inference.formats import EXPORTERS, INPUT, OUTPUT, Exporter, Format, Outputs, versions
from litlab.inference.restore import load_checkpoint, load_for_inference
from litlab.models import SupervisedModule
from litlab.review.console import quiet_third_party
from litlab.runtime.bundle import BUNDLE_JSON, BUNDLE_VERSION, PARITY_JSON, Preprocessing
from litlab.runtime.inputs import scaled
from litlab.values import is_number

log = logging.getLogger(__name__)

# What the graph computes after the network, by task (bundle.json's `graph_applies`): no runtime
# step is left but the argmax of the probabilities.
GRAPH_APPLIES = {
    Task.MULTICLASS: "softmax(logits / temperature): class probabilities (N, C)",
    Task.BINARY: "sigmoid(logit / temperature) as [1 - p, p]: class probabilities (N, 2)",
    Task.REGRESSION: "value * target_std + target_mean: the target in its own units (N,)",
}


def export(ckpt_path: str, format: str, out: str | Path, log_dir: str = "logs", tolerance: object = 1e-4) -> Path:
    """Write the bundle of `ckpt_path` to the new folder `out`; return it. `tolerance`: for regression, the
    largest difference allowed between PyTorch's and the exported value, as a fraction of the target's std."""
    quiet_third_party()
    exporter, out = EXPORTERS[Format.parse(format)], checked_out(out)
    allowed = checked_tolerance(tolerance)
    path = store.resolve(ckpt_path, log_dir, prefer="best")
    model, spec, scaler = load_for_inference(path)
    prep = preprocessing(spec, scaler)
    x = test_inputs(path)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        exporter.write(Outputs(model), torch.from_numpy(scaled(x[:2], prep)), staging / exporter.file)
        found = parity_of(model, prep, exporter, staging / exporter.file, x)
        reason = parity.refusal(found, prep.task, allowed * float(model.target_std))
        if reason is not None:
            raise UserError(reason)
        files.write_json(staging / PARITY_JSON, found)
        files.write_json(staging / BUNDLE_JSON, bundle_json(model, prep, Format(format), exporter, path))
        into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("bundle written to %s (parity: %s)", out, {k: found[k] for k in ("batch_1", "batch_N")})
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


def test_inputs(ckpt_path: Path) -> np.ndarray:
    """The raw test split of the run's own data (N, ...), as the DataModule holds it."""
    _, datamodule = load_checkpoint(ckpt_path)
    return datamodule.split_tensors("test").x.numpy()


def parity_of(model: SupervisedModule, prep: Preprocessing, exporter: Exporter, network: Path, x: np.ndarray) -> dict:
    """PyTorch's predict_outputs against the exported file run by its runtime, both on `x` preprocessed
    from bundle.json's own record (read back from JSON, as predict.py bundle=DIR reads it)."""
    inputs = scaled(x, Preprocessing.from_json(prep.to_json()))
    reference = TorchPredictor(model, prep).outputs(scaled(x, prep))
    return {**parity.measure(reference, exporter.run(network), inputs, prep.task), "runtime": exporter.runtime}


def bundle_json(
    model: SupervisedModule, prep: Preprocessing, format: Format, exporter: Exporter, ckpt: Path
) -> dict[str, Any]:
    return {
        "bundle_version": BUNDLE_VERSION,
        "format": format.value,
        "file": exporter.file,
        "input": {"name": INPUT, "dtype": "float32", "shape": ["N", *prep.input_shape], "is": "scaled inputs"},
        "output": {"name": OUTPUT},
        "graph_applies": GRAPH_APPLIES[prep.task],
        "temperature": float(model.temperature),
        "target_mean": float(model.target_mean),
        "target_std": float(model.target_std),
        "preprocessing": prep.to_json(),
        "versions": versions("litlab", *exporter.packages),
        "source": {"ckpt_path": str(ckpt)},
    }
