"""Tests run the real `conf/`, shrunk: CPU, few epochs, no logger unless asked, output in tmp."""

import contextlib
import gzip
import io
import json
import logging
import os
import pickle
import runpy
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

SHRINK = [
    "trainer=cpu",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=none",
    "extras.print_config=false",
]

# For runs whose loggers a test reads (sweeps): one epoch of a small MLP.
QUICK = [
    *(o for o in SHRINK if not o.startswith(("logger=", "trainer.max_epochs="))),
    "trainer.max_epochs=1",
    "model.hidden_sizes=[32]",
]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`-n auto`), each worker gets its share of the cores for torch's threads,
    and so do the processes it starts: two workers with two threads each on two cores spent
    most of their time contending (the fast suite took 238 s instead of 163 s with `-n 2`)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)


def compose_cfg(tmp_path: Path, *overrides: str, config_name: str = "train", shrink: bool = True) -> DictConfig:
    """Compose the real config with `overrides`, writing everything under `tmp_path`."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=[*(SHRINK if shrink else []), *overrides])
    with open_dict(cfg):  # outside a Hydra app there is no hydra:runtime.output_dir to interpolate
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path / "logs")
    return cfg


def write_csv(folder: Path, df, name: str = "t.csv") -> str:
    """`df` as folder/name, without the index; returns the path."""
    path = folder / name
    df.to_csv(path, index=False)
    return str(path)


@pytest.fixture
def make_cfg(tmp_path):
    def make(*overrides: str, **kw) -> DictConfig:
        return compose_cfg(tmp_path, *overrides, **kw)

    return make


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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a server or daemon a test started, by its own PID: SIGTERM, then SIGKILL if it lingers."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def job_metrics(sweep_dir: Path) -> dict[str, dict]:
    """Each job's metrics.json in a sweep dir, by job dir name ("0", "1", ...)."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")}


def run_in_process(script: str, *args: str) -> tuple[int, str, str]:
    """Run an entry point in this process as the command line would (`python train.py ARGS`),
    without the ~10 s a new process spends importing: (exit code, stdout, stderr). Hydra's
    state and logging setup are undone afterwards."""
    root, argv = logging.getLogger(), sys.argv
    handlers, level = list(root.handlers), root.level
    out, err = io.StringIO(), io.StringIO()
    sys.argv = [str(ROOT / script), *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
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


@pytest.fixture
def cli():
    return run_in_process


# Real MNIST for the tests that use it (skipped without it): $LITLAB_DATA_DIR, else ../shared/data.
REAL_DATA_DIR = Path(os.environ.get("LITLAB_DATA_DIR", ROOT.parent / "shared" / "data"))
needs_real_mnist = pytest.mark.skipif(
    not (REAL_DATA_DIR / "MNIST" / "raw").is_dir(), reason=f"real MNIST not found in {REAL_DATA_DIR}/MNIST/raw"
)


def idx_bytes(a: np.ndarray) -> bytes:
    """The idx format of unsigned bytes: magic 0x00000800 + ndim, big-endian dims, data."""
    return bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(np.uint8).tobytes()


def tiny_images(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images whose class (0..9) is written into their brightness, so they are learnable."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = rng.integers(0, 40, (n, *shape)) + (y * 20).reshape(-1, *[1] * len(shape))
    return x.astype(np.uint8), y.astype(np.uint8)


def write_mnist(folder: Path, n_train: int = 100, n_test: int = 20, gz: bool = True) -> Path:
    """Tiny MNIST-format files (train-images-idx3-ubyte[.gz]...) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        x, y = tiny_images(n, (28, 28), seed)
        for kind, a in (("images-idx3", x), ("labels-idx1", y)):
            path = folder / f"{prefix}-{kind}-ubyte{'.gz' if gz else ''}"
            path.write_bytes(gzip.compress(idx_bytes(a)) if gz else idx_bytes(a))
    return folder


def write_cifar10(folder: Path, per_batch: int = 20) -> Path:
    """Tiny CIFAR-10 python batches (data_batch_1..5, test_batch) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        x, y = tiny_images(per_batch, (3, 32, 32), i)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x.reshape(per_batch, -1), b"labels": y.tolist()}, f)
    return folder


def write_image_sets(data_dir: Path) -> Path:
    """Tiny MNIST, Fashion-MNIST and CIFAR-10 in torchvision's layout under `data_dir`."""
    write_mnist(data_dir / "MNIST" / "raw")
    write_mnist(data_dir / "FashionMNIST" / "raw", gz=False)
    write_cifar10(data_dir / "cifar-10-batches-py")
    return data_dir
