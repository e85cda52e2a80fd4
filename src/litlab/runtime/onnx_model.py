"""An exported ONNX network run by onnxruntime on the CPU: the bundle path's model. The graph ends in
the probabilities (temperature and softmax/sigmoid applied) or the regression value in the target's
units, so its outputs are the checkpoint's `predict_outputs` as they are. The network is checked
against bundle.json when it is loaded: a model.onnx of another export is refused there, not at the
first request."""

from pathlib import Path

import numpy as np
import onnxruntime as ort

# onnxruntime's errors are pybind11 classes that derive from Exception alone, importable only from here.
from onnxruntime.capi.onnxruntime_pybind11_state import (
    Fail,
    InvalidArgument,
    InvalidGraph,
    InvalidProtobuf,
    NoSuchFile,
    NotImplemented,
    RuntimeException,
)

from litlab.data_spec import DataSpec, ScalerStats, Task
from litlab.errors import UserError
from litlab.runtime.bundle import REEXPORT, Bundle, read_bundle

ONNX = "onnx"
BATCH = 1024  # rows per run: memory stays bounded whatever the input's size
LOAD_ERRORS = (Fail, InvalidArgument, InvalidGraph, InvalidProtobuf, NoSuchFile, NotImplemented, RuntimeException)
FLOAT = "tensor(float)"  # the dtype export.py writes: float32 scaled inputs


def session_of(bundle: Bundle) -> ort.InferenceSession:
    """onnxruntime's session of the bundle's network; a file it cannot load (empty, truncated, not ONNX)
    is one line."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are about graph optimisations
    try:
        return ort.InferenceSession(str(bundle.network), options, providers=["CPUExecutionProvider"])
    except LOAD_ERRORS as e:
        reason = str(e).rsplit(" failed:", 1)[-1].strip()  # after onnxruntime's "Load model from PATH failed:"
        raise UserError(
            f"bundle={str(bundle.folder)!r}: {bundle.file} is not an ONNX model onnxruntime can load ({reason}); "
            f"{REEXPORT}"
        ) from None


def network_mismatch(session: ort.InferenceSession, bundle: Bundle) -> str | None:
    """What of the network's one input and output disagrees with bundle.json's data contract, or None.
    The first axis is the batch (symbolic); every other axis export.py wrote is a number."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        return f"the network has {len(inputs)} inputs and {len(outputs)} outputs, export.py writes 1 and 1"
    takes, gives, spec = inputs[0].shape[1:], outputs[0].shape[1:], bundle.spec
    if inputs[0].type != FLOAT or list(takes) != list(spec.input_shape):
        return (
            f"bundle.json's {bundle.field('input_shape')} is {list(spec.input_shape)}, but the network takes "
            f"{inputs[0].type} of shape {['N', *takes]}"
        )
    if spec.task is Task.REGRESSION:
        return None if not gives else f"the network gives outputs of shape {['N', *gives]}, a regression gives [N]"
    if len(gives) != 1 or gives[0] != spec.num_classes:
        return (
            f"bundle.json's {bundle.field('class_names')} has {spec.num_classes} names, but the network gives "
            f"outputs of shape {['N', *gives]}"
        )
    return None


class OnnxPredictor:
    """The network of a bundle folder (format onnx), its data contract and scaler; `outputs` of scaled inputs."""

    def __init__(self, bundle: Bundle) -> None:
        if bundle.format != ONNX:
            raise UserError(
                f"bundle={str(bundle.folder)!r} is a {bundle.format} bundle ({bundle.file}); predict.py and serve.py "
                "run ONNX bundles: export with format=onnx, or give the checkpoint as ckpt_path="
            )
        self.session = session_of(bundle)
        mismatch = network_mismatch(self.session, bundle)
        if mismatch is not None:
            raise UserError(
                f"bundle={str(bundle.folder)!r}: {mismatch}; {bundle.file} is of another export: {REEXPORT}"
            )
        self.input_name = self.session.get_inputs()[0].name
        self.spec: DataSpec = bundle.spec
        self.scaler: ScalerStats = bundle.scaler

    @classmethod
    def load(cls, folder: str | Path) -> "OnnxPredictor":
        return cls(read_bundle(folder))

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (N, C) or values (N,) of the scaled float32 inputs `x` (N, ...)."""
        parts = [self.session.run(None, {self.input_name: x[i : i + BATCH]})[0] for i in range(0, len(x), BATCH)]
        return np.concatenate(parts)
