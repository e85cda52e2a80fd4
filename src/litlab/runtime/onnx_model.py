"""An exported ONNX network run by onnxruntime on the CPU: the bundle path's model. The graph ends in
the probabilities (temperature and softmax/sigmoid applied) or the regression value in the target's
units, so its outputs are the checkpoint's `predict_outputs` as they are."""

from pathlib import Path

import numpy as np
import onnxruntime as ort

from litlab.errors import UserError
from litlab.runtime.bundle import Bundle, Preprocessing, read_bundle

ONNX = "onnx"
BATCH = 1024  # rows per run: memory stays bounded whatever the input's size


class OnnxPredictor:
    """The network of a bundle folder (format onnx) and its preprocessing; `outputs` of scaled inputs."""

    def __init__(self, bundle: Bundle) -> None:
        if bundle.format != ONNX:
            raise UserError(
                f"bundle={str(bundle.folder)!r} is a {bundle.format} bundle ({bundle.file}); predict.py and serve.py "
                "run ONNX bundles: export with format=onnx, or give the checkpoint as ckpt_path="
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: its warnings are about graph optimisations
        self.session = ort.InferenceSession(str(bundle.network), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.preprocessing: Preprocessing = bundle.preprocessing

    @classmethod
    def load(cls, folder: str | Path) -> "OnnxPredictor":
        return cls(read_bundle(folder))

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (N, C) or values (N,) of the scaled float32 inputs `x` (N, ...)."""
        parts = [self.session.run(None, {self.input_name: x[i : i + BATCH]})[0] for i in range(0, len(x), BATCH)]
        return np.concatenate(parts)
