"""A run records where its numbers came from (run.provenance), and scripts/reproduce.py runs it
again from that record and gets the same numbers on the CPU."""

import json
import shutil
import socket
import subprocess
import sys
from importlib import metadata

from tests.helpers.config import QUICK, ROOT


def test_a_cpu_run_records_its_provenance_and_reproduces_exactly(tmp_path, cli):
    run_dir, again = tmp_path / "run", tmp_path / "again"
    code, _, err = cli("train.py", *QUICK, "seed=7", f"hydra.run.dir={run_dir}")
    assert code == 0, err[-3000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    prov = record["provenance"]
    assert prov["seed"] == 7 and prov["device"] == "cpu" and prov["host"] == socket.gethostname()
    assert prov["versions"]["torch"] == metadata.version("torch") and prov["versions"]["litlab"]
    assert set(prov["versions"]) >= {"python", "lightning", "hydra-core"} and len(prov["data"]["sha256"]) == 64
    if shutil.which("git") and (ROOT / ".git").exists():
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert prov["git"]["commit"] == head.stdout.strip() and isinstance(prov["git"]["dirty"], bool)

    cmd = [sys.executable, "scripts/reproduce.py", str(run_dir), "--into", str(again)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"reproduced exactly: {again}" in proc.stdout
    result = json.loads((again / "reproduce.json").read_text())
    assert result["agrees"] and result["tolerance"] == 0 and result["config_differences"] == []
    assert {r["metric"] for r in result["metrics"]} >= {"val/loss", "test/acc"}
    assert all(r["recorded"] == r["reproduced"] for r in result["metrics"])


def test_reproduce_refuses_a_dir_without_a_finished_run_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "scripts/reproduce.py", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith("Error: ") and "Traceback" not in proc.stderr
