"""serve.py on a bundle, and the hostile-input table of its HTTP door: a good request is answered as
predict.py answers; each request a client can send that the model cannot take is a 4xx whose JSON
`detail` names what was wrong and what is valid; never a 500, never a 200. Real servers of the tiny
bundles (a table and an image model) on 127.0.0.1 and free ports, started once for the module."""

import asyncio
import base64
import io
import json
import os
import re
import signal
import time

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI, Request
from PIL import Image

from litlab.data_spec import Columns, DataSpec, InputKind, Task
from litlab.errors import UserError
from litlab.inference.checkpoint import predict
from litlab.runtime.outputs import outputs_json
from litlab.runtime.server import BodyLimit, PredictRequest, drain, image_inputs, stop_on_sigterm, table_inputs
from tests.helpers.deploy_models import bomb_png, tiny_models
from tests.helpers.doors import Form, Refusal
from tests.helpers.serving import (
    assert_answers_equal_predict,
    assert_http_refused,
    listening_addresses,
    post,
    post_chunked,
    servers,
)

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop

HTTP, BODY = "serve.py (HTTP)", "POST /predict body"
LIMIT_BYTES = 10 * 1_000_000  # conf/serve.yaml's max_request_mb=10


def bodies(rows: pd.DataFrame, picture: bytes) -> dict[str, bytes]:
    """The requests the rows send, by name: JSON built from 2 good breast_cancer rows and a digit."""
    good = rows.head(2).to_dict(orient="records")

    def with_value(column: str, value: object) -> list[dict]:
        return [{**good[0], column: value}]

    encoded = base64.b64encode(picture).decode()
    as_json = {
        "rows_short": {"rows": [{k: v for k, v in row.items() if k != "mean radius"} for row in good]},
        "rows_text": {"rows": with_value("mean texture", "soft")},
        "rows_null": {"rows": with_value("mean area", None)},
        "rows_empty": {"rows": []},
        "rows_as_lists": {"rows": [list(good[0].values())]},
        "rows_not_list": {"rows": "mean radius=17.99"},
        "misspelt": {"row": good},
        "both": {"rows": good, "images": [encoded]},
        "images_to_table": {"images": [encoded]},
        "rows_to_images": {"rows": good},
        "images_empty": {"images": []},
        "bad_base64": {"images": ["%%% not base64"]},
        "not_image": {"images": [base64.b64encode(b"GIF89a but no picture").decode()]},
        "bomb": {"images": [base64.b64encode(bomb_png()).decode()]},
    }
    found = {name: json.dumps(body).encode() for name, body in as_json.items()}
    found["rows_inf"] = json.dumps({"rows": with_value("mean area", float("inf"))}).encode()  # Infinity: Python's
    found["not_json"] = b'{"rows": [{"mean radius": 17.99,'
    found["empty"] = b""
    found["array"] = b"[1, 2, 3]"
    one = len(json.dumps(good[0]))
    found["huge"] = json.dumps({"rows": good[:1] * ((2 * LIMIT_BYTES + 1_000_000) // one)}).encode()  # 21 MB of rows
    return found


# args: (the model it is sent to, the body's name in `bodies`[, "chunked": sent without a Content-Length])
REFUSALS: list[Refusal] = [
    Refusal(HTTP, BODY, Form.CORRUPT, "JSON decode error", ("cancer", "not_json")),
    Refusal(HTTP, BODY, Form.EMPTY, "Field required", ("cancer", "empty")),
    Refusal(HTTP, BODY, Form.WRONG_TYPE, "Input should be a valid dictionary", ("cancer", "array")),
    Refusal(HTTP, BODY, Form.WRONG_TYPE, "Extra inputs are not permitted", ("cancer", "misspelt")),
    Refusal(HTTP, BODY, Form.DUPLICATE, "this model takes rows of the columns", ("cancer", "both")),
    Refusal(HTTP, BODY, Form.HUGE, "over max_request_mb=10", ("cancer", "huge")),
    Refusal(HTTP, BODY, Form.HUGE, "over max_request_mb=10", ("cancer", "huge", "chunked")),
    Refusal(HTTP, "rows", Form.TOO_FEW, "rows: give a non-empty list", ("cancer", "rows_empty")),
    Refusal(HTTP, "rows", Form.WRONG_TYPE, "Input should be a valid list", ("cancer", "rows_not_list")),
    Refusal(HTTP, "rows", Form.WRONG_TYPE, "Input should be a valid dictionary", ("cancer", "rows_as_lists")),
    Refusal(HTTP, "rows", Form.WRONG_SHAPE, "rows lacks the column(s) ['mean radius']", ("cancer", "rows_short")),
    Refusal(HTTP, "rows", Form.WRONG_TYPE, "column(s) ['mean texture'] must be numeric", ("cancer", "rows_text")),
    Refusal(HTTP, "rows", Form.MISSING, "rows has missing values in ['mean area']", ("cancer", "rows_null")),
    Refusal(HTTP, "rows", Form.NON_FINITE, "not finite (inf or NaN) in ['mean area']", ("cancer", "rows_inf")),
    Refusal(HTTP, "rows", Form.WRONG_TYPE, "this model takes images", ("digits", "rows_to_images")),
    Refusal(HTTP, "images", Form.WRONG_TYPE, "this model takes rows of the columns", ("cancer", "images_to_table")),
    Refusal(HTTP, "images", Form.TOO_FEW, "images: give a non-empty list", ("digits", "images_empty")),
    Refusal(HTTP, "images", Form.CORRUPT, "images[0] is not base64", ("digits", "bad_base64")),
    Refusal(HTTP, "images", Form.CORRUPT, "images[0] is not an image file", ("digits", "not_image")),
    Refusal(HTTP, "images", Form.HUGE, "images[0] is not a readable image", ("digits", "bomb")),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The tiny bundles served side by side, once for the module: their ports, the bodies the rows send, and
    the servers' working dir."""
    models = tiny_models(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("doors_serve")
    found = bodies(pd.read_csv(models.rows), next(models.pictures.iterdir()).read_bytes())
    with servers(tmp, f"bundle={models.cancer_bundle}", f"bundle={models.digits_bundle}") as (cancer, digits):
        yield {"cancer": cancer, "digits": digits}, found, tmp


def test_a_bundle_server_answers_as_predict_py(served, tmp_path_factory):
    ports, _, cwd = served
    tiny, tmp = tiny_models(tmp_path_factory), tmp_path_factory.mktemp("predicted")
    assert listening_addresses(ports["cancer"]) == {"0100007F"}  # 127.0.0.1 only
    assert not (cwd / "client.py").exists()  # LitServe's sample client is not written where it runs
    status, answer = post(ports["cancer"], {"rows": pd.read_csv(tiny.rows).to_dict(orient="records")})
    assert status == 200, answer
    assert_answers_equal_predict(answer, predict(str(tiny.cancer_ckpt), str(tiny.rows), str(tmp / "cancer.csv")))
    pictures = sorted(tiny.pictures.iterdir())
    status, answer = post(ports["digits"], {"images": [base64.b64encode(p.read_bytes()).decode() for p in pictures]})
    assert status == 200, answer
    assert_answers_equal_predict(answer, predict(str(tiny.digits_ckpt), str(tiny.pictures), str(tmp / "digits.csv")))


@pytest.mark.parametrize("row", REFUSALS, ids=[f"{r.id}_{r.args[1]}" for r in REFUSALS])
def test_a_bad_request_is_a_4xx_naming_what_is_wrong(served, row):
    ports, found, _ = served
    model, name, *how = row.args
    body = found[name]
    if how == ["chunked"]:
        status, answer = post_chunked(ports[model], (body[i : i + 1_000_000] for i in range(0, len(body), 1_000_000)))
    else:
        status, answer = post(ports[model], body)
    assert_http_refused(status, answer, row.says)


def test_a_good_request_still_answers_after_the_bad_ones(served):
    """The refusals left the server serving (no worker died on a bomb or a huge body)."""
    ports, found, _ = served
    rows = json.loads(found["both"])["rows"]
    status, answer = post(ports["cancer"], {"rows": rows})
    assert status == 200 and len(answer["predictions"]) == 2, answer
    status, answer = post(ports["digits"], {"images": json.loads(found["both"])["images"]})
    assert status == 200 and answer["predictions"][0]["label"] in [str(d) for d in range(10)], answer


# The same door's parts in this process (no server): the body limit on scripted ASGI messages, the
# request readers, SIGTERM, and the answers' JSON.


def limited_app(max_bytes: int) -> BodyLimit:
    """BodyLimit around a FastAPI app that answers the length of the body it read."""
    app = FastAPI()

    @app.post("/predict")
    async def length(request: Request) -> dict:
        return {"n": len(await request.body())}

    return BodyLimit(app, max_bytes=max_bytes, setting="max_request_mb=1e-05")


def call(app, chunks: list[bytes], headers: dict[bytes, bytes]) -> tuple[int, dict, int]:
    """(status, JSON answer, body messages the app or the limit read) of POST /predict sending `chunks`."""
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    read, sent = [], []

    async def receive() -> dict:
        read.append(messages.pop(0) if messages else {"type": "http.disconnect"})
        return read[-1]

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/predict", "raw_path": b"/predict", "root_path": "", "query_string": b"",
             "headers": list(headers.items()), "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8080)}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), len([m for m in read if m["type"] == "http.request"])


OVER = (
    "the request body is over max_request_mb=1e-05 (10 bytes); send fewer rows or images per request, or start "
    "serve.py with a larger max_request_mb"
)


@pytest.mark.parametrize(
    "chunks, headers, answer, reads",
    [
        ([b"x" * 10], {b"content-length": b"10"}, (200, {"n": 10}), 1),  # at the limit: served
        ([b"x" * 6, b"x" * 5], {b"content-length": b"11"}, (413, OVER), 2),  # declared over: the body drained
        ([b"x" * 11], {b"content-length": b"11", b"expect": b"100-Continue"}, (413, OVER), 0),  # waits: nothing read
        ([b"x" * 5, b"x" * 5], {}, (200, {"n": 10}), 2),  # chunked, at the limit
        ([b"x" * 6, b"x" * 5, b"x" * 3], {}, (413, OVER), 3),  # chunked over: refused as it passes, the rest drained
        ([b"x" * 6, b"x" * 5], {}, (413, OVER), 2),  # ... the last chunk passing it: nothing left to drain
    ],
    ids=["at-limit", "declared-over", "expect-continue", "chunked-at-limit", "chunked-over", "last-chunk-over"],
)
def test_the_body_limit_answers_413_by_the_declared_or_the_counted_size_and_drains_the_rest(
    chunks, headers, answer, reads
):
    status, body, read = call(limited_app(10), chunks, {b"content-type": b"application/json", **headers})
    assert status == answer[0] and read == reads
    assert body == answer[1] if status == 200 else body["detail"] == answer[1]


def test_draining_stops_at_its_budget_and_at_the_client_s_end():
    def receiver(messages: list[dict]):
        async def receive() -> dict:
            return messages.pop(0)

        return receive

    chunks = [{"type": "http.request", "body": b"x" * 4, "more_body": True} for _ in range(5)]
    asyncio.run(drain(receiver(chunks), 9))
    assert len(chunks) == 2  # 12 bytes read for a budget of 9, then it stops: a larger body closes the connection
    last = [{"type": "http.request", "body": b"x"}, {"type": "http.request", "body": b"y", "more_body": False}]
    asyncio.run(drain(receiver(last), 100))  # no more_body: the body's last message (ASGI's default)
    assert len(last) == 1
    left = [{"type": "http.disconnect"}, {"type": "http.request", "body": b"x"}]
    asyncio.run(drain(receiver(left), 100))
    assert len(left) == 1


def test_the_body_limit_passes_other_asgi_messages_through():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(BodyLimit(app, 10, "max_request_mb=1e-05")({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]


TABLE_SPEC = DataSpec(Task.BINARY, InputKind.TABLE, (2,), ("a", "b"), columns=Columns(("x", "y"), (), ("x", "y")))
IMAGE_SPEC = DataSpec(Task.MULTICLASS, InputKind.IMAGE, (1, 4, 6), ("0", "1", "2"), pixel_max=255.0)


def test_a_request_s_rows_are_read_in_the_columns_order_and_other_bodies_are_refused_naming_the_form():
    x = table_inputs(PredictRequest(rows=[{"y": 2, "x": 1}, {"x": 3.5, "y": 4}]), TABLE_SPEC)
    np.testing.assert_array_equal(x, [[1, 2], [3.5, 4]])
    takes = "this model takes rows of the columns ['x', 'y']: send {\"rows\": [{column: value, ...}, ...]}"
    for request in (PredictRequest(), PredictRequest(rows=[{"x": 1, "y": 2}], images=["AA=="])):
        with pytest.raises(UserError) as refused:
            table_inputs(request, TABLE_SPEC)
        assert str(refused.value) == takes
    with pytest.raises(UserError, match=r"^rows: give a non-empty list of objects"):
        table_inputs(PredictRequest(rows=[]), TABLE_SPEC)
    with pytest.raises(UserError, match=r"^this model takes images \(resized to 4x6\): send \{\"rows\""):
        table_inputs(PredictRequest(rows=[{"x": 1, "y": 2}]), IMAGE_SPEC)  # a table reader for no table
    named = (([{"x": 1}], "rows lacks the column(s) ['y']"), ([{"x": 1, "y": float("inf")}], "rows has values that"))
    for rows, says in named:
        with pytest.raises(UserError, match=rf"^{re.escape(says)}"):
            table_inputs(PredictRequest(rows=rows), TABLE_SPEC)


def test_a_request_s_images_are_decoded_and_other_bodies_are_refused_naming_the_form():
    png = io.BytesIO()
    Image.new("L", (8, 8), 255).save(png, format="PNG")
    picture = base64.b64encode(png.getvalue()).decode()
    x = image_inputs(PredictRequest(images=[picture, picture]), IMAGE_SPEC)
    assert x.shape == (2, 1, 4, 6) and (x == 255).all()  # resized to the model's 4x6 (H x W), in its pixel range
    takes = 'this model takes images (resized to 4x6): send {"images": [base64 of a PNG/JPEG file, ...]}'
    for request in (PredictRequest(rows=[{"x": 1}]), PredictRequest(images=[picture], rows=[])):
        with pytest.raises(UserError) as refused:
            image_inputs(request, IMAGE_SPEC)
        assert str(refused.value) == takes
    with pytest.raises(UserError, match=r"^images\[1\] is not base64 \(the file's bytes, base64-encoded\)$"):
        image_inputs(PredictRequest(images=[picture, "not base64!"]), IMAGE_SPEC)
    with pytest.raises(UserError, match=r"^images\[0\] is not base64"):  # decodable once its "!" is dropped: refused
        image_inputs(PredictRequest(images=["AAAA!"]), IMAGE_SPEC)
    with pytest.raises(UserError, match=r"^images: give a non-empty list"):
        image_inputs(PredictRequest(images=[]), IMAGE_SPEC)


def test_the_answers_json_names_each_input_s_class_label_and_probabilities_or_its_value():
    probs = np.array([[0.2, 0.8], [0.9, 0.1]], dtype=np.float32)
    assert outputs_json(probs, Task.BINARY, ["no", "yes"]) == [
        {"class": 1, "label": "yes", "probabilities": {"no": pytest.approx(0.2), "yes": pytest.approx(0.8)}},
        {"class": 0, "label": "no", "probabilities": {"no": pytest.approx(0.9), "yes": pytest.approx(0.1)}},
    ]
    assert outputs_json(probs[:1], Task.MULTICLASS, None)[0]["label"] == "1"  # no names: the class ids
    assert outputs_json(np.array([1.5, -2.0]), Task.REGRESSION, None) == [{"prediction": 1.5}, {"prediction": -2.0}]


def test_sigterm_stops_the_server_as_ctrl_c_and_ends_a_process_forked_from_it():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        stop_on_sigterm()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        child = os.fork()
        if child == 0:  # a forked worker: SIGTERM's default, the process ends by it
            os.kill(os.getpid(), signal.SIGTERM)
            os._exit(0)
        _, status = os.waitpid(child, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
