"""serve.py on a checkpoint: a real server on 127.0.0.1 and a free port, started as its own process
group, asked over HTTP, stopped by its PID; its answers equal predict.py's. A bundle's server, its
answers and the requests it refuses are tests/test_doors_serve.py's."""

import base64

import pytest

from litlab.inference.checkpoint import predict
from tests.helpers.deploy_models import tiny_models
from tests.helpers.serving import assert_answers_equal_predict, post, servers

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop


@pytest.mark.slow
def test_a_checkpoint_server_answers_an_image_as_predict_py(tmp_path_factory):
    """~20 s on 2 cores: the server and its inference worker each import torch and Lightning."""
    tiny, tmp = tiny_models(tmp_path_factory), tmp_path_factory.mktemp("serve")
    expected = predict(str(tiny.digits_ckpt), str(tiny.pictures), str(tmp / "digits.csv"))
    with servers(tmp, f"ckpt_path={tiny.digits_ckpt}") as (port,):
        pictures = sorted(tiny.pictures.iterdir())
        status, answer = post(port, {"images": [base64.b64encode(p.read_bytes()).decode() for p in pictures]})
        assert status == 200, answer
        assert_answers_equal_predict(answer, expected)
