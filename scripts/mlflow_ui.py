"""MLflow's UI over litlab's MLflow store (logger=mlflow), on 127.0.0.1 only.

    python scripts/mlflow_ui.py [--store logs/mlflow.db] [--port 5000]

Runs `mlflow ui` on the SQLite store the runs wrote (conf/logger/mlflow.yaml: ${paths.log_dir}/mlflow.db)
until Ctrl-C; open the printed address in a browser. A store that is missing, no MLflow store, or
locked, and a port that is no port or is taken, are one line (exit 2) before the server starts.
"""

import argparse
import errno
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from litlab.errors import UserError, exit_on_user_error

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 5  # for a run's write to the store to end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=ROOT / "logs" / "mlflow.db")
    parser.add_argument("--port", default="5000", help="on 127.0.0.1 (default 5000)")
    args = parser.parse_args()
    port = exit_on_user_error(lambda: free_port(args.port))
    exit_on_user_error(lambda: check_store(args.store))
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{args.store.resolve()}",
           "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    print(f"MLflow UI on http://127.0.0.1:{port} (Ctrl-C stops it)", flush=True)
    raise SystemExit(serve(cmd))


def check_store(store: Path) -> None:
    """An MLflow SQLite store that can be read now: MLflow's UI would start on anything and fail on each page."""
    if not store.is_file():
        raise UserError(f"--store {store}: no such file; train with logger=mlflow first, or give its path")
    try:
        with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=WAIT_S)) as db:
            db.execute("SELECT count(*) FROM experiments").fetchone()
    except sqlite3.Error as e:
        raise UserError(
            f"--store {store} cannot be read as an MLflow store: {e}; give the mlflow.db a run with "
            "logger=mlflow wrote (its paths.log_dir), or wait for the process writing to it to finish"
        ) from None


def free_port(text: str) -> int:
    """`--port` as a port number that nothing on 127.0.0.1 listens on yet."""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UserError(f"--port {text!r} is no port; give a number from 1 to 65535, e.g. --port 5000")
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", int(text)))
        except OSError as e:
            taken = e.errno == errno.EADDRINUSE
            raise UserError(f"--port {text} {'is in use' if taken else f'cannot be used ({e.strerror})'} on "
                        f"127.0.0.1; give another, e.g. --port {int(text) + 1}") from None  # fmt: skip
    return int(text)


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


if __name__ == "__main__":
    main()
