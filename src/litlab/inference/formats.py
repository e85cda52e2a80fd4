"""The export formats: how the network is written (ONNX by torch.onnx's dynamo exporter, or
torch.export's .pt2), and how the written file is run back for the parity check."""

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

INPUT, OUTPUT = "x", "outputs"  # the graph's input and output names (bundle.json records them)
# The exporter's passes log every step at INFO, which Hydra's logging shows: a dozen lines per export.
CHATTY = ("onnx_ir", "onnxscript")
Run = Callable[[np.ndarray], np.ndarray]  # scaled float32 inputs (N, ...) -> outputs


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


def run_onnx(path: Path) -> Run:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {INPUT: x})[0]


def write_pt2(graph: Outputs, example: torch.Tensor, path: Path) -> None:
    program = torch.export.export(graph, (example,), dynamic_shapes=batch_axis())

    def save(temporary: Path) -> None:
        with open(temporary, "wb") as f:  # a file object: given a path, torch.export wants it to end in .pt2
            torch.export.save(program, f)

    files.write_with(path, save)


def run_pt2(path: Path) -> Run:
    module = torch.export.load(path).module()

    @torch.no_grad()
    def run(x: np.ndarray) -> np.ndarray:
        return module(torch.from_numpy(x)).numpy()

    return run


def versions(*packages: str) -> dict[str, str]:
    return {p: importlib.metadata.version(p) for p in packages}


@dataclass(frozen=True)
class Exporter:
    """One format: its file name, writer, runner (what parity runs) and the packages whose versions it records."""

    file: str
    write: Callable[[Outputs, torch.Tensor, Path], None]
    run: Callable[[Path], Run]
    runtime: str  # what runs the file, for parity.json
    packages: tuple[str, ...]


EXPORTERS = {
    Format.ONNX: Exporter(
        "model.onnx", write_onnx, run_onnx, "onnxruntime", ("torch", "onnx", "onnxscript", "onnxruntime")
    ),
    Format.TORCH_EXPORT: Exporter("model.pt2", write_pt2, run_pt2, "torch.export.load(...).module()", ("torch",)),
}
