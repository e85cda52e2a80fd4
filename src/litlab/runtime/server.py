"""The prediction server: LitServe (FastAPI and uvicorn underneath) on 127.0.0.1 only. POST /predict
takes JSON, `{"rows": [{column: value, ...}, ...]}` for a table model or `{"images": [base64 of an
image file, ...]}` for an image model, and answers `{"predictions": [...]}` in runtime/outputs.py's
JSON; GET /health answers `ok`. The inputs are read by runtime/inputs.py and scaled with the model's
statistics, as predict.py reads them. A request this model cannot take is a 422 naming what is wrong; a body over
max_request_mb is a 413, never parsed. The port and the limit are checked before anything starts."""

import base64
import binascii
import math
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Any

import litserve as ls
import numpy as np
from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from typing_extensions import override

from litlab.data_spec import DataSpec, InputKind
from litlab.errors import UserError
from litlab.ports import HOST, free_port
from litlab.readers import tables
from litlab.runtime import inputs
from litlab.runtime.onnx_model import OnnxPredictor
from litlab.runtime.outputs import outputs_json
from litlab.runtime.predict_files import Predictor
from litlab.values import is_number

UNPROCESSABLE = 422  # what FastAPI answers a body of the wrong form; a wrong content is answered alike
TOO_LARGE = 413
PORTS = (1024, 65535)  # LitServe's range: below 1024 a port is privileged
MB = 1_000_000
DRAIN_BYTES = 100 * MB  # the most of a refused body read and dropped (see drain)


class PredictRequest(BaseModel):
    """The body of POST /predict: rows for a table model, or base64-encoded image files for an image model.
    Any other key is a 422 naming it (a misspelt `row` would otherwise read as no rows at all)."""

    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, Any]] | None = None
    images: list[str] | None = None


def table_inputs(request: PredictRequest, spec: DataSpec) -> np.ndarray:
    if request.rows is None or request.images is not None or spec.columns is None:
        raise UserError(f'this model takes {inputs.expects(spec)}: send {{"rows": [{{column: value, ...}}, ...]}}')
    x = tables.features(tables.rows_frame(request.rows), spec.columns, "rows")
    return inputs.checked(x, spec, "rows")


def image_inputs(request: PredictRequest, spec: DataSpec) -> np.ndarray:
    if request.images is None or request.rows is not None:
        raise UserError(f'this model takes {inputs.expects(spec)}: send {{"images": [base64 of a PNG/JPEG file, ...]}}')
    encoded = []
    for i, text in enumerate(request.images):
        try:
            encoded.append((base64.b64decode(text, validate=True), f"images[{i}]"))
        except (binascii.Error, ValueError):
            raise UserError(f"images[{i}] is not base64 (the file's bytes, base64-encoded)") from None
    if not encoded:
        raise UserError('images: give a non-empty list, {"images": [base64 of a PNG/JPEG file, ...]}')
    return inputs.image_batch(encoded, spec)


READERS: dict[InputKind, Callable[[PredictRequest, DataSpec], np.ndarray]] = {
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
        spec = self.predictor.spec
        try:
            return self.predictor.scaler.apply(READERS[spec.kind](request, spec))
        except UserError as e:
            raise HTTPException(status_code=UNPROCESSABLE, detail=str(e)) from None

    @override
    def predict(self, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        return self.predictor.outputs(x)

    @override
    def encode_response(self, output: np.ndarray, **kwargs: Any) -> dict:
        spec = self.predictor.spec
        return {"predictions": outputs_json(output, spec.task, spec.class_names)}


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


async def drain(receive: Receive, budget: int) -> None:
    """Read and drop the rest of a request's body, up to `budget` bytes: a client that sends its whole
    body before it reads the answer (no `Expect: 100-continue`) then reads the 413 instead of a reset
    connection; one sending more than that gets its connection closed."""
    more = True
    while more and budget > 0:
        message = await receive()
        budget -= len(message.get("body", b""))
        more = message["type"] == "http.request" and message.get("more_body", False)


class BodyLimit:
    """ASGI middleware: a request whose body is over `max_bytes` is answered 413 with a JSON message,
    by its Content-Length before the body is parsed, or, sent in chunks (no Content-Length), as soon
    as what arrived passes the limit; no body over it is held in memory or parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int, setting: str) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.message = (
            f"the request body is over {setting} ({max_bytes} bytes); send fewer rows or images per request, "
            "or start serve.py with a larger max_request_mb"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            if headers.get(b"expect", b"").lower() != b"100-continue":  # else the client waits: nothing sent yet
                await drain(receive, DRAIN_BYTES)
            await JSONResponse({"detail": self.message}, TOO_LARGE)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                if message.get("more_body", False):
                    await drain(receive, DRAIN_BYTES)
                raise HTTPException(TOO_LARGE, self.message)  # FastAPI answers it while it reads the body
            return message

        await self.app(scope, counted, send)


def checked_limit(max_request_mb: object) -> int:
    """max_request_mb (MB: 10^6 bytes) as the largest body in bytes; a positive finite number."""
    if not is_number(max_request_mb):
        size = None
    else:
        size = float(max_request_mb) if math.isfinite(max_request_mb) and max_request_mb > 0 else None
    if size is None:
        raise UserError(f"max_request_mb={max_request_mb!r} is not a size; give a positive number of MB, e.g. 10")
    return max(1, int(size * MB))


@dataclass(frozen=True)
class Settings:
    """serve.py's settings, checked: the port and the largest request body (bytes), and how it was set."""

    port: int
    max_bytes: int
    limit: str

    @classmethod
    def checked(cls, port: object, max_request_mb: object) -> "Settings":
        limit = f"max_request_mb={max_request_mb}"
        return cls(free_port(port, "port={}", *PORTS), checked_limit(max_request_mb), limit)


def serve(load: Callable[[], Predictor], settings: Settings, what: str) -> None:
    """Serve the model `load` makes on http://127.0.0.1:`port` until Ctrl-C or SIGTERM."""
    stop_on_sigterm()
    limit = (BodyLimit, {"max_bytes": settings.max_bytes, "setting": settings.limit})
    server = ls.LitServer(PredictAPI(load), accelerator="cpu", devices=1, workers_per_device=1, middlewares=[limit])
    url = f"http://{HOST}:{settings.port}"
    print(f"serving {what} on {url}: POST /predict, GET /health (Ctrl-C stops it)", flush=True)
    # No client.py written into the working dir; one HTTP process (the default starts one per worker).
    server.run(host=HOST, port=settings.port, num_api_servers=1, generate_client_file=False, log_level="warning")


def serve_bundle(folder: str, port: object, max_request_mb: object) -> None:
    """A bundle's ONNX network by onnxruntime; torch is never imported. The settings are checked and the
    bundle loaded here first: a bad port, limit or bundle is one line before any server starts."""
    settings = Settings.checked(port, max_request_mb)
    OnnxPredictor.load(folder)
    serve(partial(OnnxPredictor.load, folder), settings, f"bundle {folder}")
