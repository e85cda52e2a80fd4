"""pytest's hooks and the fixtures the tests share. The helpers they import are in tests/helpers/."""

import contextlib
import ctypes
import gc
import os
import signal
import time

import pytest
import torch
from omegaconf import DictConfig

# Before the helpers are imported: an assert in a helper then reports its values, as one in a test does.
pytest.register_assert_rewrite("tests.helpers")

from tests.helpers.config import compose_cfg  # noqa: E402
from tests.helpers.processes import descendants, run_in_process  # noqa: E402
from tests.helpers.serving import web_server  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`-n auto`), each worker gets its share of the cores for torch's threads,
    and so do the processes it starts: two workers with two threads each on two cores spent
    most of their time contending (the fast suite took 238 s instead of 163 s with `-n 2`)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
    # Orphans of what a test starts (a launcher's jobs whose launcher died) come back to this
    # process instead of init, so that no_leaked_processes sees them too.
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def new_processes(before: set[int]) -> dict[int, str]:
    return {pid: cmd for pid, cmd in descendants(os.getpid()).items() if pid not in before}


@pytest.fixture(autouse=True, scope="module")
def no_leaked_processes():
    """Fails a module whose tests leave a process running, however they ended (a timeout, a failed
    assert), after its own fixtures have stopped their servers; the processes are killed."""
    before = set(descendants(os.getpid()))
    yield
    if not new_processes(before):
        return  # the usual case, without a full collection (about a second in a worker's large heap)
    gc.collect()  # DataLoader workers of loaders no test holds any more end with their iterators
    deadline = time.monotonic() + 10  # those that are ending get the time to end
    while (left := new_processes(before)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if left:
        pytest.fail(f"processes left running by this module's tests (killed now): {left}")


@pytest.fixture
def make_cfg(tmp_path):
    """compose_cfg with this test's tmp_path: `make_cfg("model=cnn", ...)`."""

    def make(*overrides: str, **kw) -> DictConfig:
        return compose_cfg(tmp_path, *overrides, **kw)

    return make


@pytest.fixture
def cli():
    """run_in_process: an entry point run in this process as the command line would."""
    return run_in_process


@pytest.fixture
def web(tmp_path, monkeypatch):
    """A web server on 127.0.0.1 for the files in tmp_path/www; torch's hub cache in tmp_path."""
    www = tmp_path / "www"
    www.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with web_server(www) as url:
        yield www, url
