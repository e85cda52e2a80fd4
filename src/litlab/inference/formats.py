"""The export formats: how the network is written (ONNX by torch.onnx's dynamo exporter, or
torch.export's .pt2), and the predictor that runs a bundle of each back for the parity check: the
runtime's OnnxPredictor, which predict.py and serve.py run, for ONNX."""

import importlib.metadata
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch
from torch import nn
from typing_extensions import override

from litlab import files
from litlab.errors import UserError
from litlab.models import SupervisedModule
from litlab.runtime.bundle import Bundle
from litlab.runtime.onnx_model import OnnxPredictor
from litlab.runtime.predict_files import Predictor

INPUT, OUTPUT = "x", "outputs"  # the graph's input and output names (bundle.json records them)
# The exporter's passes log every step at INFO, which Hydra's logging shows: a dozen lines per export.
CHATTY = ("onnx_ir", "onnxscript")


class Format(StrEnum):
    """What export.py writes: format=onnx or format=torch_export."""

    ONNX = "onnx"
    TORCH_EXPORT = "torch_export"

    @classmethod
    def parse(cls, value: str) -> "Format":
        try:
            return cls(value)
        except ValueError:
            raise UserError(f"format={value!r} is not an export format; valid: {', '.join(cls)}") from None


class Outputs(nn.Module):
    """The exported graph: the network and then `predict_outputs` (the temperature, softmax/sigmoid, or the
    regression target's mean and std), so the exported outputs are the checkpoint's predictions as they are."""

    def __init__(self, model: SupervisedModule) -> None:
        super().__init__()
        self.model = model
        self.eval()  # the graph of inference: dropout off (the exporter traces the mode it is given)

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.predict_outputs(self.model(x))


def batch_axis() -> dict[str, dict[int, torch.export.Dim]]:
    """The first axis dynamic: one graph for any number of inputs (parity checks 1 and N)."""
    return {INPUT: {0: torch.export.Dim("batch")}}


def write_onnx(graph: Outputs, example: torch.Tensor, path: Path) -> None:
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)
    program = torch.onnx.export(
        graph, (example,), dynamo=True, dynamic_shapes=batch_axis(), input_names=[INPUT],
        output_names=[OUTPUT], verbose=False,
    )  # fmt: skip
    if program is None:
        raise RuntimeError("torch.onnx.export (dynamo) returned no program")
    files.write_with(path, program.save)


def write_pt2(graph: Outputs, example: torch.Tensor, path: Path) -> None:
    program = torch.export.export(graph, (example,), dynamic_shapes=batch_axis())

    def save(temporary: Path) -> None:
        with open(temporary, "wb") as f:  # a file object: given a path, torch.export wants it to end in .pt2
            torch.export.save(program, f)

    files.write_with(path, save)


class ProgramPredictor:
    """A torch_export bundle's program (torch.export.load) with the bundle's DataSpec and scaler."""

    def __init__(self, bundle: Bundle) -> None:
        self.spec, self.scaler = bundle.spec, bundle.scaler
        self.module = torch.export.load(bundle.network).module()

    @torch.no_grad()
    def outputs(self, x: np.ndarray) -> np.ndarray:
        return self.module(torch.from_numpy(x)).numpy()


def versions(*packages: str) -> dict[str, str]:
    return {p: importlib.metadata.version(p) for p in packages}


@dataclass(frozen=True)
class Exporter:
    """One format: its file name, writer, the predictor of its bundles (what parity runs) and the packages
    whose versions it records."""

    file: str
    write: Callable[[Outputs, torch.Tensor, Path], None]
    load: Callable[[Bundle], Predictor]
    runtime: str  # what runs the file, for parity.json
    packages: tuple[str, ...]


EXPORTERS = {
    Format.ONNX: Exporter(
        "model.onnx", write_onnx, OnnxPredictor, "onnxruntime", ("torch", "onnx", "onnxscript", "onnxruntime")
    ),
    Format.TORCH_EXPORT: Exporter(
        "model.pt2", write_pt2, ProgramPredictor, "torch.export.load(...).module()", ("torch",)
    ),
}
