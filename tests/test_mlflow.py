"""logger=mlflow: a sweep of two parallel jobs writes to one SQLite store, read back through the
REST API of a real `mlflow server` on 127.0.0.1."""

import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.config import QUICK, ROOT
from tests.helpers.outputs import job_metrics
from tests.helpers.processes import free_port, stop

pytest.importorskip("mlflow", reason="mlflow is not installed (requirements.txt lists it)")
pytestmark = pytest.mark.e2e  # every test here runs a whole job


@contextlib.contextmanager
def mlflow_server(store: Path, log: Path) -> Iterator[str]:
    """`mlflow server` on the store, in a process group of its own (uvicorn and MLflow's job runners
    are its children), stopped by its PID's group."""
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{store}",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"mlflow server did not answer within 90 s:\n{log.read_text()[-3000:]}"
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=5) as r:
                if r.status == 200:
                    break
            time.sleep(0.5)
        yield url
    finally:
        stop(proc, timeout=30, group=True)


def api(url: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/{path}", data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.slow  # about 45 s: the server's start, two jobs and their sweep's start-up
def test_a_parallel_sweep_logs_both_runs_with_params_and_full_histories(tmp_path):
    logs, sweep = tmp_path / "logs", tmp_path / "logs" / "sweep"
    logs.mkdir()
    with mlflow_server(logs / "mlflow.db", tmp_path / "mlflow.out") as url:
        cmd = [sys.executable, "train.py", "-m", "hydra/launcher=parallel", "logger=[tensorboard,mlflow]",
               "optimizer.lr=0.01,0.05", *QUICK, "trainer.max_epochs=3", f"paths.log_dir={logs}",
               f"hydra.sweep.dir={sweep}"]  # fmt: skip
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        experiment = api(url, "experiments/get-by-name?experiment_name=train")["experiment"]
        runs = api(url, "runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
        by_name = {r["info"]["run_name"]: r for r in runs}
        assert sorted(by_name) == ["optimizer.lr=0.01", "optimizer.lr=0.05"]  # named as in TensorBoard
        for job in job_metrics(sweep).values():
            run = by_name[f"optimizer.lr={job['hparams']['optimizer.lr']}"]
            params = {p["key"]: p["value"] for p in run["data"]["params"]}
            assert params == {k: str(v) for k, v in job["hparams"].items()}  # the settings HParams shows
            history = api(url, f"metrics/get-history?run_id={run['info']['run_id']}&metric_key=val/loss")["metrics"]
            assert len(history) == 3 and [m["step"] for m in history] == sorted(m["step"] for m in history)
            final = {m["key"]: m["value"] for m in run["data"]["metrics"]}
            assert final["best/test/acc"] == pytest.approx(job["test"]["test/acc"])
            tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
            assert tags["best_ckpt"] == job["best_ckpt"] and run["info"]["status"] == "FINISHED"


def test_a_run_logs_its_settings_curves_and_record_to_the_sqlite_store(tmp_path, cli):
    from mlflow import MlflowClient

    from litlab.review.mlflow_ui import check_store, runs_url

    logs, run_dir = tmp_path / "logs", tmp_path / "logs" / "run"
    code, _, err = cli("train.py", "logger=mlflow", *QUICK, "trainer.max_epochs=2", f"paths.log_dir={logs}",
                       f"hydra.run.dir={run_dir}")  # fmt: skip
    assert code == 0, err[-3000:]
    client = MlflowClient(f"sqlite:///{logs / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    record = json.loads((run_dir / "metrics.json").read_text())
    assert run.data.tags["run_dir"] == str(run_dir) and run.info.status == "FINISHED"
    assert run.data.metrics["best/val/loss"] == pytest.approx(record["val"]["val/loss"])
    assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 2
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"config.yaml", "metrics.json", "data_report.json"}
    assert run.data.params["model"] == "mlp" and "optimizer.lr" in run.data.params
    # litlab mlflow-ui opens where this run is, not on MLflow's front page
    assert check_store(logs / "mlflow.db") == run.info.experiment_id
    assert (
        runs_url(5000, run.info.experiment_id) == f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs"
    )
