"""A real `tensorboard` server over a 2x2 sweep, read through its HTTP API as the browser does:
run names, the HParams experiment and session groups, and where the val/ curves end."""

import contextlib
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.config import LIGHT, QUICK
from tests.helpers.processes import run_in_process, stop

# A 4-job sweep and a real TensorBoard server reading it: ~18 s of the fast suite, so in the slow one.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SWEPT = {"model.hidden_sizes": ("[8]", "[16]"), "optimizer.lr": ("0.001", "0.01")}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    logs = tmp_path_factory.mktemp("logs")
    overrides = [f"{k}={','.join(v)}" for k, v in SWEPT.items()]
    quick = [o for o in QUICK if not o.startswith(("logger=", "model.hidden_sizes="))]
    code, _, err = run_in_process("train.py", "-m", *overrides, *quick, *LIGHT, "trainer.max_epochs=2",
                                  f"paths.log_dir={logs}")  # fmt: skip
    assert code == 0, err[-3000:]
    (sweep_dir,) = (logs / "train" / "multiruns").iterdir()
    return sweep_dir


@contextlib.contextmanager
def serve(logdir: Path, tmp: Path) -> Iterator[str]:
    """`tensorboard --logdir` on 127.0.0.1 and a port the OS picks; stopped by its own PID."""
    out = tmp / "tensorboard.out"
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0"]
    with open(out, "w") as f:
        proc = subprocess.Popen([*cmd, "--load_fast", "false"], stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not (found := re.search(r"http://127\.0\.0\.1:(\d+)/", out.read_text())):
            assert proc.poll() is None, f"tensorboard exited {proc.returncode}:\n{out.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"tensorboard did not start within 90 s:\n{out.read_text()[-3000:]}"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def server(sweep, tmp_path_factory):
    with serve(sweep, tmp_path_factory.mktemp("tb")) as url:
        yield url


def get(url: str, body: dict | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def runs_named(server: str) -> list[str]:
    """/data/runs, once the server has read every job's final metrics (it loads in the background)."""
    deadline = time.monotonic() + 60
    while len(runs := get(f"{server}/data/runs")) < 9 and time.monotonic() < deadline:  # type: ignore[arg-type]
        time.sleep(0.5)
    return runs  # type: ignore[return-value]


def test_run_names_are_the_swept_overrides(server):
    sizes, lrs = SWEPT.values()
    names = {f"model.hidden_sizes={h},optimizer.lr={lr}" for h in sizes for lr in lrs}
    # '.': the sweep root, which holds the experiment summary
    assert set(runs_named(server)) == {".", *names, *(f"{n}/best" for n in names)}


def test_hparams_are_the_swept_keys_with_each_sessions_final_metrics(server, sweep):
    runs_named(server)
    experiment = get(f"{server}/data/plugin/hparams/experiment", {"experimentName": ""})
    assert {h["name"] for h in experiment["hparamInfos"]} == set(SWEPT)
    metrics = [m["name"] for m in experiment["metricInfos"]]
    assert {"group": "best", "tag": "val/acc"} in metrics and {"group": "best", "tag": "test/acc"} in metrics
    request = {
        "experimentName": "",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
        "colParams": [{"hparam": k} for k in SWEPT] + [{"metric": m} for m in metrics],
        "startIndex": 0,
        "sliceSize": 100,
    }
    groups = get(f"{server}/data/plugin/hparams/session_groups", request)["sessionGroups"]  # type: ignore[index]
    assert len(groups) == 4
    for group in groups:
        (session,) = group["sessions"]
        job = next(
            json.loads(p.read_text())
            for p in sweep.glob("*/metrics.json")
            if Path(json.loads(p.read_text())["tensorboard"]).name == session["name"]
        )
        values = {(m["name"]["group"], m["name"]["tag"]): m["value"] for m in session["metricValues"]}
        assert values[("best", "val/acc")] == pytest.approx(job["val"]["val/acc"])
        assert values[("best", "test/acc")] == pytest.approx(job["test"]["test/acc"])
        assert group["hparams"]["optimizer.lr"] in (0.001, 0.01)


def test_val_curves_end_at_the_last_trained_epoch(server, sweep):
    for path in sweep.glob("*/metrics.json"):
        job = json.loads(path.read_text())
        run = Path(job["tensorboard"]).name
        query = urllib.parse.urlencode({"run": run, "tag": "val/acc"})
        val = get(f"{server}/data/plugin/scalars/scalars?{query}")
        train = get(f"{server}/data/plugin/scalars/scalars?{urllib.parse.urlencode({'run': run, 'tag': 'train/acc'})}")
        assert len(val) == job["epochs"] == 2  # type: ignore[arg-type]
        assert [p[1] for p in val] == [p[1] for p in train]  # type: ignore[index, union-attr]


def test_a_mixed_logdir_shows_the_sweeps_columns_and_every_run(sweep, tmp_path):
    """`--logdir logs` with the classification sweep and a regression run: TensorBoard applies
    the sweep's summary to both. Its columns are the sweep's metrics only, the monitored one
    first; the regression run is still listed, with the metrics the two tasks share."""
    logs = sweep.parents[2]
    regression = ["data=diabetes", "model=linear_regression", *QUICK[:-1], *LIGHT, f"paths.log_dir={logs}"]
    code, _, err = run_in_process("train.py", *regression)
    assert code == 0, err[-3000:]
    with serve(logs, tmp_path) as url:
        deadline = time.monotonic() + 60
        while len(get(f"{url}/data/runs")) < 11 and time.monotonic() < deadline:  # type: ignore[arg-type]
            time.sleep(0.5)
        experiment = get(f"{url}/data/plugin/hparams/experiment", {"experimentName": ""})
        columns = [{"metric": m["name"]} for m in experiment["metricInfos"]]  # type: ignore[index]
        request = {"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN"], "colParams": columns, "sliceSize": 100}
        groups = get(f"{url}/data/plugin/hparams/session_groups", request)["sessionGroups"]  # type: ignore[index]
    (session,) = [g["sessions"][0] for g in groups if "data=diabetes" in g["sessions"][0]["name"]]
    assert {v["name"]["tag"] for v in session["metricValues"]} >= {"val/loss", "test/loss"}
    names = [m["name"]["tag"] for m in experiment["metricInfos"]]  # type: ignore[index]
    monitor = json.loads(next(sweep.glob("*/metrics.json")).read_text())["monitor"]
    assert names[0] == monitor and "val/acc" in names and not {"val/mse", "val/r2", "test/mae"} & set(names)
