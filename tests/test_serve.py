"""serve.py: a real server on 127.0.0.1 and a free port, started as its own process group, asked over
HTTP, stopped by its PID. Its answers equal predict.py's for the same inputs (the requests it refuses
are tests/test_doors_serve.py's table)."""

import base64
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from litlab.inference.checkpoint import predict
from tests.helpers.deploy_models import tiny_models
from tests.helpers.serving import post, servers

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny breast_cancer (table) and digits (images) checkpoints and bundles, their new inputs, and the
    checkpoints' predictions of those inputs (predict.py)."""
    tiny = tiny_models(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("serve")
    expected = {
        "cancer": predict(str(tiny.cancer_ckpt), str(tiny.rows), str(tmp / "cancer.csv")),
        "digits": predict(str(tiny.digits_ckpt), str(tiny.pictures), str(tmp / "digits.csv")),
    }
    return tmp, tiny, expected


def listening_addresses(port: int) -> set[str]:
    """The local addresses listening on `port` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if int(hex_port, 16) == port and state == LISTEN:
                found.add(address)
    return found


def probabilities(answer: dict, names: list[str]) -> np.ndarray:
    return np.array([[p["probabilities"][n] for n in names] for p in answer["predictions"]])


def assert_answers_equal_predict(answer: dict, expected: pd.DataFrame) -> None:
    names = [c.removeprefix("prob_") for c in expected.columns if c.startswith("prob_")]
    assert [p["label"] for p in answer["predictions"]] == expected["pred_label"].astype(str).tolist()
    assert [p["class"] for p in answer["predictions"]] == expected["pred_class"].tolist()
    probs = expected[[f"prob_{n}" for n in names]].to_numpy()
    np.testing.assert_allclose(probabilities(answer, names), probs, rtol=0, atol=1e-5)


def test_a_bundle_server_answers_as_predict_py(models):
    tmp, tiny, expected = models
    with servers(tmp, f"bundle={tiny.cancer_bundle}", f"bundle={tiny.digits_bundle}") as (table_port, image_port):
        assert listening_addresses(table_port) == {"0100007F"}  # 127.0.0.1 only
        status, answer = post(table_port, {"rows": pd.read_csv(tiny.rows).to_dict(orient="records")})
        assert status == 200, answer
        assert_answers_equal_predict(answer, expected["cancer"])
        pictures = sorted(tiny.pictures.iterdir())
        status, answer = post(image_port, {"images": [base64.b64encode(p.read_bytes()).decode() for p in pictures]})
        assert status == 200, answer
        assert_answers_equal_predict(answer, expected["digits"])


@pytest.mark.slow
def test_a_checkpoint_server_answers_an_image_as_predict_py(models):
    """~20 s on 2 cores: the server and its inference worker each import torch and Lightning."""
    tmp, tiny, expected = models
    with servers(tmp, f"ckpt_path={tiny.digits_ckpt}") as (port,):
        pictures = sorted(tiny.pictures.iterdir())
        status, answer = post(port, {"images": [base64.b64encode(p.read_bytes()).decode() for p in pictures]})
        assert status == 200, answer
        assert_answers_equal_predict(answer, expected["digits"])
