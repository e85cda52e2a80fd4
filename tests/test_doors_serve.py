"""serve.py on a bundle, and the hostile-input table of its HTTP door: a good request is answered as
predict.py answers; each request a client can send that the model cannot take is a 4xx whose JSON
`detail` names what was wrong and what is valid; never a 500, never a 200. Real servers of the tiny
bundles (a table and an image model) on 127.0.0.1 and free ports, started once for the module."""

import base64
import json

import pandas as pd
import pytest

from litlab.inference.checkpoint import predict
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
    """The tiny bundles served side by side, once for the module; the bodies the rows send."""
    models = tiny_models(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("doors_serve")
    found = bodies(pd.read_csv(models.rows), next(models.pictures.iterdir()).read_bytes())
    with servers(tmp, f"bundle={models.cancer_bundle}", f"bundle={models.digits_bundle}") as (cancer, digits):
        yield {"cancer": cancer, "digits": digits}, found


def test_a_bundle_server_answers_as_predict_py(served, tmp_path_factory):
    ports, _ = served
    tiny, tmp = tiny_models(tmp_path_factory), tmp_path_factory.mktemp("predicted")
    assert listening_addresses(ports["cancer"]) == {"0100007F"}  # 127.0.0.1 only
    status, answer = post(ports["cancer"], {"rows": pd.read_csv(tiny.rows).to_dict(orient="records")})
    assert status == 200, answer
    assert_answers_equal_predict(answer, predict(str(tiny.cancer_ckpt), str(tiny.rows), str(tmp / "cancer.csv")))
    pictures = sorted(tiny.pictures.iterdir())
    status, answer = post(ports["digits"], {"images": [base64.b64encode(p.read_bytes()).decode() for p in pictures]})
    assert status == 200, answer
    assert_answers_equal_predict(answer, predict(str(tiny.digits_ckpt), str(tiny.pictures), str(tmp / "digits.csv")))


@pytest.mark.parametrize("row", REFUSALS, ids=[f"{r.id}_{r.args[1]}" for r in REFUSALS])
def test_a_bad_request_is_a_4xx_naming_what_is_wrong(served, row):
    ports, found = served
    model, name, *how = row.args
    body = found[name]
    if how == ["chunked"]:
        status, answer = post_chunked(ports[model], (body[i : i + 1_000_000] for i in range(0, len(body), 1_000_000)))
    else:
        status, answer = post(ports[model], body)
    assert_http_refused(status, answer, row.says)


def test_a_good_request_still_answers_after_the_bad_ones(served):
    """The refusals left the server serving (no worker died on a bomb or a huge body)."""
    ports, found = served
    rows = json.loads(found["both"])["rows"]
    status, answer = post(ports["cancer"], {"rows": rows})
    assert status == 200 and len(answer["predictions"]) == 2, answer
    status, answer = post(ports["digits"], {"images": json.loads(found["both"])["images"]})
    assert status == 200 and answer["predictions"][0]["label"] in [str(d) for d in range(10)], answer
