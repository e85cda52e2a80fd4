"""serve.py: a real server on 127.0.0.1 and a free port, started as its own process group, asked over
HTTP, stopped by its PID. Its answers equal predict.py's for the same inputs; a bad request is a 4xx
that says what is wrong."""

import base64
import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn import datasets

from litlab.deploy.export import export
from litlab.run.predict import predict
from litlab.run.train import train
from tests.helpers.config import ROOT, compose_cfg
from tests.helpers.processes import free_port, started, stop

HEALTH_TIMEOUT_S = 90  # start-up on 2 busy cores; a checkpoint's worker imports torch
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A breast_cancer logistic regression (table) and a digits MLP (images): checkpoints and ONNX bundles,
    new inputs for them, and the checkpoints' predictions of those inputs (predict.py)."""
    tmp = tmp_path_factory.mktemp("serve")
    rows = datasets.load_breast_cancer(as_frame=True).data.sample(6, random_state=1)
    rows.to_csv(tmp / "rows.csv", index=False)
    pictures = tmp / "pictures"
    pictures.mkdir()
    for i, image in enumerate(datasets.load_digits().images[:4]):
        Image.fromarray((image * 255 / 16).round().astype(np.uint8)).save(pictures / f"{i}.png")
    found = {}
    for name, overrides, given in (
        ("cancer", ["experiment=breast_cancer_logistic"], tmp / "rows.csv"),
        ("digits", ["trainer.max_epochs=2"], pictures),
    ):
        ckpt = train(compose_cfg(tmp / name, *overrides))["best_ckpt"]
        expected = predict(ckpt, str(given), str(tmp / f"{name}.csv"))
        found[name] = (ckpt, export(ckpt, "onnx", tmp / f"{name}_bundle"), expected)
    return tmp, rows, sorted(pictures.iterdir()), found


def serve_command(tmp: Path, port: int, model: str) -> list[str]:
    return [sys.executable, str(ROOT / "serve.py"), model, f"port={port}", f"paths.log_dir={tmp / 'logs'}"]


def wait_healthy(proc: subprocess.Popen, port: int, log: Path) -> None:
    """/health answers ok within HEALTH_TIMEOUT_S, or the test fails with the server's output."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve.py exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            if r.read() == b"ok":
                return
        time.sleep(0.3)
    raise AssertionError(f"no /health within {HEALTH_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def post(port: int, body: bytes | dict) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


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


@contextlib.contextmanager
def servers(tmp: Path, *models: str):
    """serve.py for each model, started side by side on free ports (their output in one log); yields the
    ports once each answers /health, and stops each by its PID, with the processes it started."""
    ports = [free_port() for _ in models]
    log = tmp / f"serve_{ports[0]}.log"
    cmds = [serve_command(tmp, port, model) for port, model in zip(ports, models, strict=True)]
    with (
        open(log, "w") as out,
        started(*cmds, cwd=tmp, stdout=out, stderr=subprocess.STDOUT, start_new_session=True) as procs,
    ):
        try:
            for proc, port in zip(procs, ports, strict=True):
                wait_healthy(proc, port, log)
            yield ports
        finally:
            for proc in procs:
                stop(proc, group=True)  # the server, its HTTP process and its inference worker


def probabilities(answer: dict, names: list[str]) -> np.ndarray:
    return np.array([[p["probabilities"][n] for n in names] for p in answer["predictions"]])


def assert_answers_equal_predict(answer: dict, expected: pd.DataFrame) -> None:
    names = [c.removeprefix("prob_") for c in expected.columns if c.startswith("prob_")]
    assert [p["label"] for p in answer["predictions"]] == expected["pred_label"].astype(str).tolist()
    assert [p["class"] for p in answer["predictions"]] == expected["pred_class"].tolist()
    probs = expected[[f"prob_{n}" for n in names]].to_numpy()
    np.testing.assert_allclose(probabilities(answer, names), probs, rtol=0, atol=1e-5)


def test_a_bundle_server_answers_as_predict_py_and_names_what_is_wrong(models):
    tmp, rows, pictures, found = models
    bundles = [f"bundle={found[name][1]}" for name in ("cancer", "digits")]
    with servers(tmp, *bundles) as (table_port, image_port):
        assert listening_addresses(table_port) == {"0100007F"}  # 127.0.0.1 only
        status, answer = post(table_port, {"rows": rows.to_dict(orient="records")})
        assert status == 200, answer
        assert_answers_equal_predict(answer, found["cancer"][2])
        images = [base64.b64encode(p.read_bytes()).decode() for p in pictures]
        status, answer = post(image_port, {"images": images})
        assert status == 200, answer
        assert_answers_equal_predict(answer, found["digits"][2])

        one_short = rows.drop(columns=["mean radius"]).head(2).to_dict(orient="records")
        for port, body, message in (
            (table_port, {"rows": one_short}, "rows lacks the column(s) ['mean radius']"),
            (table_port, {"images": images}, "this model takes rows of the columns ['mean radius'"),
            (image_port, {"images": [base64.b64encode(b"not a picture").decode()]}, "images[0] is not an image"),
            (image_port, {"images": ["%%%"]}, "images[0] is not base64"),
            (table_port, b"{not json", "JSON decode error"),
        ):
            status, answer = post(port, body)
            assert status == 422 and message in json.dumps(answer), (status, answer)


@pytest.mark.slow
def test_a_checkpoint_server_answers_an_image_as_predict_py(models):
    """~20 s on 2 cores: the server and its inference worker each import torch and Lightning."""
    tmp, _, pictures, found = models
    with servers(tmp, f"ckpt_path={found['digits'][0]}") as (port,):
        status, answer = post(port, {"images": [base64.b64encode(p.read_bytes()).decode() for p in pictures]})
        assert status == 200, answer
        assert_answers_equal_predict(answer, found["digits"][2])
