"""The entry points run as a user runs them (a new process, or this one), and the servers and
daemons a test starts: on a free port, stopped by their own PID."""

import contextlib
import io
import logging
import os
import runpy
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig

from litlab.run.cli import main as litlab_main
from tests.helpers.config import ROOT

LITLAB = "litlab"  # run_in_process(LITLAB, VERB, ...): the installed command


def run_script(script: str, *args: str, cwd: Path = ROOT, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run one of the entry points as a user would; fail with its output if it fails."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{script} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


def run_in_process(script: str, *args: str) -> tuple[int, str, str]:
    """Run an entry point in this process as the command line would (`python train.py ARGS`, or
    `litlab VERB ARGS` for script "litlab"),
    without the ~10 s a new process spends importing: (exit code, stdout, stderr). Hydra's
    state and logging setup are undone afterwards."""
    root, argv = logging.getLogger(), sys.argv
    handlers, level = list(root.handlers), root.level
    out, err = io.StringIO(), io.StringIO()
    sys.argv = ["litlab" if script == LITLAB else str(ROOT / script), *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                if script == LITLAB:  # `litlab VERB ARGS`: the function its console script calls
                    litlab_main()
                else:
                    runpy.run_path(str(ROOT / script), run_name="__main__")
                code = 0
            except SystemExit as e:
                if isinstance(e.code, str):  # what the interpreter does with SystemExit("message")
                    print(e.code, file=sys.stderr)
                code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
        HydraConfig.instance().cfg = None  # a later in-process train() is not inside this run
        root.handlers[:], root.level = handlers, level
    return code, out.getvalue(), err.getvalue()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> dict[int, str]:
    """The processes below `pid` that still run (zombies left out), with their command lines, from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)": state, ppid, ...
        except OSError:
            continue  # it ended meanwhile
        if fields[0] != "Z":
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = {}, list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        try:
            found[child] = (Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]).strip()
        except OSError:
            continue
        todo += parents.get(child, [])
    return found


@contextlib.contextmanager
def started(*cmds: list[str], **popen: Any) -> Iterator[list[subprocess.Popen]]:
    """`cmds` started side by side; each one still running when the block ends (a failed assert, a
    timeout) is stopped by its PID."""
    procs: list[subprocess.Popen] = []
    try:
        for cmd in cmds:
            procs.append(subprocess.Popen(cmd, **popen))
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)


def stop(proc: subprocess.Popen, timeout: float = 20, group: bool = False) -> None:
    """Stop a server or daemon a test started, by its own PID: SIGTERM, then SIGKILL if it lingers.
    `group`: one started with start_new_session=True, stopped with the children it started."""

    def send(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)

    send(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(timeout=timeout)
