"""Tests run the real `conf/`, shrunk: CPU, few epochs, no logger unless asked, output in tmp."""

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
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


def compose_cfg(tmp_path: Path, *overrides: str, config_name: str = "train", shrink: bool = True) -> DictConfig:
    """Compose the real config with `overrides`, writing everything under `tmp_path`."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=[*(SHRINK if shrink else []), *overrides])
    with open_dict(cfg):  # outside a Hydra app there is no hydra:runtime.output_dir to interpolate
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path / "logs")
    return cfg


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
