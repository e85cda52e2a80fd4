"""The command line answers at once when nothing trains: no torch, Lightning or scikit-learn
is imported before Hydra has parsed it (timings: scripts/cli_startup.py)."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("torch", "lightning", "torchvision", "sklearn", "optuna")


@pytest.mark.parametrize("args", [["train.py", "--help"], ["train.py", "--cfg", "job"], ["train.py", "--info"],
                                  ["evaluate.py", "--help"], ["predict.py", "--help"]])  # fmt: skip
def test_help_cfg_and_info_import_nothing_heavy(args):
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")}
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    assert "model" in proc.stdout  # it did answer


def test_tab_completion_offers_the_options_of_a_group():
    env = {**os.environ, "COMP_LINE": "python train.py model=c", "COMP_POINT": "23"}
    proc = subprocess.run([sys.executable, "train.py", "-sc", "query=bash"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.stdout.split() == ["model=cnn"], proc.stdout + proc.stderr[-2000:]
