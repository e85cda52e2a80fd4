"""pytest's hooks and the fixtures the tests share. The helpers they import are in tests/helpers/."""

import os

import pytest
import torch
from omegaconf import DictConfig

# Before the helpers are imported: an assert in a helper then reports its values, as one in a test does.
pytest.register_assert_rewrite("tests.helpers")

from tests.helpers.config import compose_cfg  # noqa: E402
from tests.helpers.processes import run_in_process  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`-n auto`), each worker gets its share of the cores for torch's threads,
    and so do the processes it starts: two workers with two threads each on two cores spent
    most of their time contending (the fast suite took 238 s instead of 163 s with `-n 2`)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)


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
