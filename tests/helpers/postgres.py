"""A real PostgreSQL server for a test, from Debian's package: its own data dir, on 127.0.0.1 and a
free port, stopped by its own PID. PostgreSQL refuses to run as root, so as root it runs as the
package's `postgres` user. Where the server or the Python driver is missing, `postgres_server`
says so for the test to skip."""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.helpers.processes import free_port, stop

START_TIMEOUT_S = 60


def binaries() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin (the server, initdb, pg_isready), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[4]))
    return Path(found[-1]).parent if found else None


def missing() -> str | None:
    """Why no server can start here (a reason for pytest.skip), or None."""
    if binaries() is None:
        return "PostgreSQL is not installed (Debian: apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg driver is not installed (pip install -r requirements.txt)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without the postgres user the Debian package creates"
    return None


def as_server_user() -> dict[str, Any]:
    """Popen's arguments that run a command as the user PostgreSQL accepts: the postgres user under root."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A fresh cluster (trust auth on 127.0.0.1 only) serving until the block ends: its SQLAlchemy URL."""
    bin_dir = binaries()
    assert bin_dir is not None, missing()
    home = Path(tempfile.mkdtemp(prefix="litlab-pg-"))  # under /tmp: the postgres user can reach it
    try:
        if os.geteuid() == 0:
            shutil.chown(home, "postgres", "postgres")
        data, port = home / "data", free_port()
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True, capture_output=True, timeout=120, **as_server_user(),
        )  # fmt: skip
        server = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(home)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **as_server_user(),
        )  # fmt: skip
        try:
            wait_ready(bin_dir, port, server)
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            server.send_signal(signal.SIGINT)  # fast shutdown: SIGTERM's smart one waits for every client
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=30)
            stop(server, timeout=30)  # SIGKILL if it lingers
    finally:
        shutil.rmtree(home, ignore_errors=True)


def wait_ready(bin_dir: Path, port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"postgres exited {server.returncode}: {server.stderr.read().decode()[-2000:]}")
        probe = [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-t", "5"]
        ready = subprocess.run(probe, capture_output=True, timeout=30)
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"postgres on port {port} was not ready within {START_TIMEOUT_S} s")
