"""Third-party notices that do not apply to a litlab run stay off the console (review.console)."""

import subprocess
import sys

import pytest

from tests.helpers.config import LIGHT, QUICK, ROOT

# Each test here is a new process that imports Lightning and runs a whole job: ~10 s each.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NOISE = (
    "no logger configured",  # Lightning, under logger=none
    "Directory watcher advancing",  # TensorBoard's reader, while the sweep summary reads the jobs' events
    "RuntimeWarning",  # numpy, casting a value past float32's range (the data check then names it)
    "all_gather_into_tensor",  # torch, inside Lightning's and torchmetrics' DDP gathers
)


def console(*args: str) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=240)
    return proc.returncode, proc.stdout + proc.stderr


def test_a_sweep_with_and_without_a_logger_prints_no_third_party_notices(tmp_path):
    sweep = ["-m", "logger=none,tensorboard", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    code, out = console("train.py", *sweep, *QUICK, *LIGHT)
    assert code == 0, out[-3000:]
    assert (tmp_path / "sweep" / "report.md").exists()
    for noise in NOISE:
        assert noise not in out, noise


@pytest.mark.slow  # ~9 s, a process importing Lightning; in the fast suite: test_errors.py's in-process twin
def test_a_value_too_large_for_float32_is_one_line_without_a_warning(tmp_path):
    table = tmp_path / "big.csv"
    rows = ["a,b,y", "1e300,2,0", *(f"{i},{i + 1},{i % 2}" for i in range(40))]
    table.write_text("\n".join(rows) + "\n")
    code, out = console("train.py", "data=csv", f"data.path={table}", "data.target=y", *QUICK,
                        f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert code == 2 and "column(s) ['a']" in out and "Traceback" not in out
    for noise in NOISE:
        assert noise not in out, noise


def test_evaluate_prints_each_line_once_and_no_adverts(tmp_path, cli):
    code, _, err = cli("train.py", *QUICK, *LIGHT, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err[-3000:]
    code, out = console("evaluate.py", f"ckpt_path={tmp_path / 'run'}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert code == 0, out[-3000:]
    assert out.count("GPU available") == 1  # Lightning's own handler printed each line a second time
    for noise in ("Tip:", "LeafSpec", "srun", *NOISE):
        assert noise not in out, noise


def test_a_run_written_to_a_log_file_has_its_progress_bars_once_not_a_redraw_per_step(tmp_path):
    """Off a terminal (a log file, a SLURM job's output): the lr range test's bar is left out, and
    each training bar appears once, as it ended; no carriage return, no line a redraw made long."""
    bars = "trainer.enable_progress_bar=true"
    lr_run = f"hydra.run.dir={tmp_path / 'lr'}"
    code, out = console("train.py", "tune=lr_find", "tune.num_training=40", *QUICK, bars, lr_run)
    assert code == 0, out[-3000:]
    code, trained = console("train.py", *QUICK, "trainer.max_epochs=2", bars, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, trained[-3000:]
    for text in (out, trained):
        assert "\r" not in text and max(map(len, text.splitlines())) < 300
    assert "Finding best initial lr" not in out
    assert trained.count("Epoch 1/1") == 1 and "Epoch 0/1" not in trained  # the bar as it ended, once
