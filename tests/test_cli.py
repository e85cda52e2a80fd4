"""The command line answers at once when nothing trains: no torch, Lightning or scikit-learn
is imported before Hydra has parsed it (timings: scripts/cli_startup.py)."""

import os
import runpy
import subprocess
import sys

import pytest

from tests.helpers.config import ROOT

HEAVY = ("torch", "lightning", "torchvision", "sklearn", "optuna")


@pytest.mark.parametrize("args", [["train.py", "--help"], ["train.py", "--cfg", "job"], ["train.py", "--info"],
                                  ["evaluate.py", "--help"], ["predict.py", "--help"], ["export.py", "--help"],
                                  ["serve.py", "--help"]])  # fmt: skip
def test_help_cfg_and_info_import_nothing_heavy(args):
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")}
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    assert "ckpt_path" in proc.stdout  # it did answer


# Every script with a command line; the modules they import once their arguments are parsed
# (scripts/throughput.py, image_folder_throughput.py) have none.
QUICK_HELP = sorted(p.name for p in (ROOT / "scripts").glob("*.py") if '__name__ == "__main__"' in p.read_text())


@pytest.mark.parametrize("script", QUICK_HELP)
def test_a_scripts_help_imports_nothing_heavy(script):
    proc = subprocess.run([sys.executable, "-X", "importtime", f"scripts/{script}", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")}
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_tab_completion_offers_the_options_of_a_group():
    env = {**os.environ, "COMP_LINE": "python train.py model=c", "COMP_POINT": "23"}
    proc = subprocess.run([sys.executable, "train.py", "-sc", "query=bash"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.stdout.split() == ["model=cnn"], proc.stdout + proc.stderr[-2000:]


@pytest.mark.parametrize("script,config", [("train.py", "train"), ("evaluate.py", "eval")])
def test_fast_help_prints_what_hydras_own_help_prints(script, config):
    """litlab.run.cli_help answers --help without Hydra's; `-cn` sends the same request to Hydra's."""
    args = ["trainer.max_epochs=7", "--resolve"]
    ours, hydras = (
        subprocess.run(
            [sys.executable, script, *extra, "--help", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout  # fmt: skip
        for extra in ([], ["-cn", config])
    )
    assert ours.splitlines() == hydras.splitlines()
    assert "_base" not in ours and "shared" not in ours  # the shared parts of options are no options
    assert "model: cnn, linear_regression, logistic_regression, mlp" in ours and "max_epochs: 7" in ours


def test_fast_help_with_a_bad_override_says_why_in_one_message():
    cmd = [sys.executable, "train.py", "--help", "model=nope"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "Could not find 'model/nope'" in proc.stderr and "mlp" in proc.stderr
    assert "_base" not in proc.stderr and "shared" not in proc.stderr  # Hydra lists only what can be chosen


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "scripts").glob("*.py")))
def test_every_script_still_imports(script, monkeypatch):
    """A script's imports and definitions run (not its main): a rename in src/ that a script
    still uses fails here, not when someone next runs the benchmark. As `python scripts/X.py`
    does, the script's own folder comes first on sys.path (a script may import a sibling)."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    runpy.run_path(str(ROOT / "scripts" / script), run_name="imported_by_test")
