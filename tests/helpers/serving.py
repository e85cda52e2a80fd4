"""serve.py as the tests run it: real servers on 127.0.0.1 and free ports, each its own process group,
asked over HTTP and stopped by their PIDs within bounded waits; and the promise every refused request
keeps (a 4xx whose JSON `detail` names what was wrong)."""

import contextlib
import functools
import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd

from tests.helpers.config import ROOT
from tests.helpers.processes import free_port, started, stop

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp
HEALTH_TIMEOUT_S = 90  # start-up on 2 busy cores; a checkpoint's worker imports torch
REQUEST_TIMEOUT_S = 30


@contextlib.contextmanager
def web_server(folder: Path) -> Iterator[str]:
    """The files in `folder` over HTTP on 127.0.0.1 (a thread of this process): its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def serve_command(tmp: Path, port: int, model: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "serve.py"), model, f"port={port}", f"paths.log_dir={tmp / 'logs'}", *args]


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


@contextlib.contextmanager
def servers(tmp: Path, *models: str) -> Iterator[list[int]]:
    """serve.py for each model (`bundle=DIR` or `ckpt_path=RUN`), started side by side on free ports (their
    output in one log); yields the ports once each answers /health, and stops each by its PID, with the
    processes it started."""
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


def answer_of(text: bytes) -> dict:
    """The server's JSON answer; any other text (a bare 500 page) as {"text": ...}, for the assertion."""
    try:
        found = json.loads(text)
    except ValueError:
        return {"text": text.decode(errors="replace")}
    return found if isinstance(found, dict) else {"json": found}


def post(port: int, body: bytes | dict) -> tuple[int, dict]:
    """POST /predict with `body` (a dict as JSON, or the bytes as they are): (status, JSON answer)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return response.status, answer_of(response.read())
    except urllib.error.HTTPError as e:
        return e.code, answer_of(e.read())


def post_chunked(port: int, chunks: Iterable[bytes]) -> tuple[int, dict]:
    """POST /predict with a body sent in chunks (no Content-Length), as a client streaming it does."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    try:
        headers = {"Content-Type": "application/json", "Connection": "close"}
        connection.request("POST", "/predict", body=iter(chunks), headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, answer_of(response.read())
    finally:
        connection.close()


def assert_http_refused(status: int, answer: dict, says: str) -> None:
    """The server's promise for a request it cannot take: a 4xx (never a 500 or a 200) whose JSON `detail`
    contains `says` (what was wrong), and no traceback."""
    assert 400 <= status < 500, (status, answer)
    assert "detail" in answer, answer
    detail = answer["detail"]
    text = detail if isinstance(detail, str) else json.dumps(detail)  # FastAPI's own: a list of objects
    assert says in text, (says, answer)
    assert "Traceback" not in text


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


def assert_answers_equal_predict(answer: dict, expected: pd.DataFrame) -> None:
    """The server's predictions are predict.py's `expected` frame: labels, classes, probabilities to 1e-5."""
    names = [c.removeprefix("prob_") for c in expected.columns if c.startswith("prob_")]
    assert [p["label"] for p in answer["predictions"]] == expected["pred_label"].astype(str).tolist()
    assert [p["class"] for p in answer["predictions"]] == expected["pred_class"].tolist()
    probs = np.array([[p["probabilities"][n] for n in names] for p in answer["predictions"]])
    np.testing.assert_allclose(probs, expected[[f"prob_{n}" for n in names]].to_numpy(), rtol=0, atol=1e-5)
