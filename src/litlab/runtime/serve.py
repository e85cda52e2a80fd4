"""The prediction server: LitServe (FastAPI and uvicorn underneath) on 127.0.0.1 only. POST /predict
takes JSON, `{"rows": [{column: value, ...}, ...]}` for a table model or `{"images": [base64 of an
image file, ...]}` for an image model, and answers `{"predictions": [...]}` in runtime/outputs.py's
JSON; GET /health answers `ok`. The inputs are read and preprocessed by runtime/inputs.py, as
predict.py reads them. A request this model cannot take is a 422 naming what is wrong."""

import base64
import binascii
import os
import signal
from collections.abc import Callable
from functools import partial
from types import FrameType
from typing import Any

import litserve as ls
import numpy as np
from fastapi import HTTPException
from pydantic import BaseModel
from typing_extensions import override

from litlab.errors import UserError
from litlab.runtime import inputs, tables
from litlab.runtime.bundle import Preprocessing
from litlab.runtime.onnx_model import OnnxPredictor
from litlab.runtime.outputs import outputs_json
from litlab.runtime.predict import Predictor
from litlab.task import InputKind

HOST = "127.0.0.1"  # the loopback only: the server answers this machine, never the network
UNPROCESSABLE = 422  # what FastAPI answers a body of the wrong form; a wrong content is answered alike


class PredictRequest(BaseModel):
    """The body of POST /predict: rows for a table model, or base64-encoded image files for an image model."""

    rows: list[dict[str, Any]] | None = None
    images: list[str] | None = None


def table_inputs(request: PredictRequest, prep: Preprocessing) -> np.ndarray:
    if request.rows is None or prep.columns is None:
        raise UserError(f'this model takes {inputs.expects(prep)}: send {{"rows": [{{column: value, ...}}, ...]}}')
    return tables.features(tables.rows_frame(request.rows), prep.columns, "rows")


def image_inputs(request: PredictRequest, prep: Preprocessing) -> np.ndarray:
    if request.images is None:
        raise UserError(f'this model takes {inputs.expects(prep)}: send {{"images": [base64 of a PNG/JPEG file, ...]}}')
    encoded = []
    for i, text in enumerate(request.images):
        try:
            encoded.append((base64.b64decode(text, validate=True), f"images[{i}]"))
        except (binascii.Error, ValueError):
            raise UserError(f"images[{i}] is not base64 (the file's bytes, base64-encoded)") from None
    if not encoded:
        raise UserError('images: give a non-empty list, {"images": [base64 of a PNG/JPEG file, ...]}')
    return inputs.image_batch(encoded, prep)


READERS: dict[InputKind, Callable[[PredictRequest, Preprocessing], np.ndarray]] = {
    InputKind.TABLE: table_inputs,
    InputKind.IMAGE: image_inputs,
}


class PredictAPI(ls.LitAPI):
    """LitServe's API of one model: `load` makes the Predictor in the inference worker (a picklable
    callable: the worker is a new process)."""

    def __init__(self, load: Callable[[], Predictor]) -> None:
        super().__init__()
        self.load = load

    @override
    def setup(self, device: str) -> None:
        self.predictor = self.load()

    @override
    def decode_request(self, request: PredictRequest, **kwargs: Any) -> np.ndarray:
        prep = self.predictor.preprocessing
        try:
            return inputs.scaled(READERS[prep.kind](request, prep), prep)
        except UserError as e:
            raise HTTPException(status_code=UNPROCESSABLE, detail=str(e)) from None

    @override
    def predict(self, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        return self.predictor.outputs(x)

    @override
    def encode_response(self, output: np.ndarray, **kwargs: Any) -> dict:
        prep = self.predictor.preprocessing
        return {"predictions": outputs_json(output, prep.task, prep.class_names)}


def stop_on_sigterm() -> None:
    """SIGTERM as Ctrl-C: LitServe stops its HTTP and inference processes on KeyboardInterrupt only, and
    SIGTERM's default would end this process alone and leave them running. A process forked from this
    one inherits the handler; there SIGTERM keeps its default."""
    server_pid = os.getpid()

    def stop(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != server_pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def serve(load: Callable[[], Predictor], port: int, what: str) -> None:
    """Serve the model `load` makes on http://127.0.0.1:`port` until Ctrl-C or SIGTERM."""
    stop_on_sigterm()
    server = ls.LitServer(PredictAPI(load), accelerator="cpu", devices=1, workers_per_device=1)
    print(f"serving {what} on http://{HOST}:{port}: POST /predict, GET /health (Ctrl-C stops it)", flush=True)
    # No client.py written into the working dir; one HTTP process (the default starts one per worker).
    server.run(host=HOST, port=port, num_api_servers=1, generate_client_file=False, log_level="warning")


def serve_bundle(folder: str, port: int) -> None:
    """A bundle's ONNX network by onnxruntime; torch is never imported. Loaded here first: a bad bundle is one line."""
    OnnxPredictor.load(folder)
    serve(partial(OnnxPredictor.load, folder), port, f"bundle {folder}")
