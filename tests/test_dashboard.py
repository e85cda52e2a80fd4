"""optuna-dashboard over a real Optuna sweep: started on a free local port, its API read, stopped by its PID."""

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.helpers.config import QUICK
from tests.helpers.processes import free_port, run_in_process, stop

# A 2-trial study and a real optuna-dashboard server: ~9 s of the fast suite, so in the slow one.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    sweep = tmp_path_factory.mktemp("study")
    code, _, err = run_in_process("train.py", "-m", "hparams_search=digits_mlp", *QUICK, "hydra.sweeper.n_trials=2",
                                  f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert code == 0, err[-3000:]
    return sweep


def test_the_dashboard_serves_the_sweeps_study(study_dir, tmp_path):
    port = free_port()
    with open(tmp_path / "dashboard.out", "w") as out:
        cmd = [sys.executable, "-m", "litlab.run.cli", "dashboard", str(study_dir), "--port", str(port)]
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline, studies = time.monotonic() + 60, None
        while studies is None:
            assert proc.poll() is None, (tmp_path / "dashboard.out").read_text()[-3000:]
            assert time.monotonic() < deadline, "optuna-dashboard did not answer within 60 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                    studies = json.loads(r.read())["study_summaries"]
            except OSError:
                time.sleep(0.3)
        (study,) = studies
        assert study["study_name"] == "digits_mlp"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}", timeout=10) as r:
            detail = json.loads(r.read())
        assert detail["name"] == "digits_mlp" and detail["directions"] == ["maximize"]
        assert detail["objective_names"] == ["val/acc"]  # its plots say what they plot, not "Objective 0"
        assert len(detail["trials"]) == 2 and {t["state"] for t in detail["trials"]} <= {"Complete", "Fail"}
    finally:
        stop(proc)
