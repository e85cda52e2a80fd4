"""MLflow's UI over litlab's MLflow store (logger=mlflow), on 127.0.0.1 only.

    python scripts/mlflow_ui.py [--store logs/mlflow.db] [--port 5000]

Runs `mlflow ui` on the SQLite store the runs wrote (conf/logger/mlflow.yaml: ${paths.log_dir}/mlflow.db)
until Ctrl-C; open the printed address in a browser.
"""

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=ROOT / "logs" / "mlflow.db")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    if not args.store.is_file():
        print(f"Error: --store {args.store}: no such file; train with logger=mlflow first, or give its path",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{args.store.resolve()}",
           "--host", "127.0.0.1", "--port", str(args.port)]  # fmt: skip
    print(f"MLflow UI on http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    raise SystemExit(serve(cmd))


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
