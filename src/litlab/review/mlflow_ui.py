"""MLflow's UI over litlab's MLflow store (logger=mlflow), on 127.0.0.1 only.

    litlab mlflow-ui [--store logs/mlflow.db] [--port 5000]

Runs `mlflow ui` on the SQLite store the runs wrote (conf/logger/mlflow.yaml: ${paths.log_dir}/mlflow.db)
until Ctrl-C; open the printed address in a browser: the runs of the experiment that ran last
(MLflow 3's UI opens on an empty GenAI page otherwise). A store that is missing, no MLflow store, or
locked, and a port that is no port or is taken, are one line (exit 2) before the server starts.
"""

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from litlab.errors import UserError, exit_on_user_error
from litlab.ports import free_port

STORE = Path("logs") / "mlflow.db"  # conf/logger/mlflow.yaml's ${paths.log_dir}/mlflow.db, from the current dir
WAIT_S = 5  # for a run's write to the store to end


def main(verb: str, argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog=f"litlab {verb}", description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=STORE, help=f"the runs' MLflow store (default {STORE})")
    parser.add_argument("--port", default="5000", help="on 127.0.0.1 (default 5000)")
    args = parser.parse_args(argv)
    port = exit_on_user_error(lambda: free_port(args.port, "--port {}"))
    experiment = exit_on_user_error(lambda: check_store(args.store))
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{args.store.resolve()}",
           "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    print(f"MLflow UI on {runs_url(port, experiment)} (Ctrl-C stops it)", flush=True)
    raise SystemExit(serve(cmd))


# The active experiment whose newest run started last.
LAST_EXPERIMENT = """SELECT e.experiment_id FROM experiments e JOIN runs r ON r.experiment_id = e.experiment_id
WHERE e.lifecycle_stage = 'active' GROUP BY e.experiment_id ORDER BY MAX(r.start_time) DESC LIMIT 1"""


def runs_url(port: int, experiment: str | None) -> str:
    """Where the UI shows `experiment`'s runs (its front page without one)."""
    return f"http://127.0.0.1:{port}/" + (f"#/experiments/{experiment}/runs" if experiment else "")


def check_store(store: Path) -> str | None:
    """An MLflow SQLite store that can be read now (MLflow's UI would start on anything and fail on
    each page); the id of the experiment that ran last, None before any run."""
    if not store.is_file():
        raise UserError(f"--store {store}: no such file; train with logger=mlflow first, or give its path")
    try:
        with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=WAIT_S)) as db:
            last = db.execute(LAST_EXPERIMENT).fetchone()
            return None if last is None else str(last[0])
    except sqlite3.Error as e:
        raise UserError(
            f"--store {store} cannot be read as an MLflow store: {e}; give the mlflow.db a run with "
            "logger=mlflow wrote (its paths.log_dir), or wait for the process writing to it to finish"
        ) from None


def serve(cmd: list[str]) -> int:
    """Run the server in a process group of its own (uvicorn and MLflow's job runners are its
    children) until it ends, or Ctrl-C or SIGTERM here stop the whole group."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C: the finally below runs
    # MLflow's own server imports a Starlette module that warns it is deprecated, once per worker.
    quiet = {**os.environ, "PYTHONWARNINGS": "ignore:starlette.middleware.wsgi is deprecated"}
    server = subprocess.Popen(cmd, start_new_session=True, env=quiet)
    try:
        return server.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=20)
