"""A run records where its numbers came from (run.provenance), and `litlab reproduce` runs it
again from that record and gets the same numbers on the CPU."""

import json
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from litlab.files.run_record import RunRecord
from litlab.run import reproduce
from tests.helpers.config import LIGHT, QUICK, ROOT

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop

LITLAB = [sys.executable, "-m", "litlab.run.cli"]  # what the `litlab` command runs


@pytest.mark.slow
def test_a_cpu_run_records_its_provenance_and_reproduces_exactly(tmp_path, cli):
    run_dir, again = tmp_path / "run", tmp_path / "again"
    code, _, err = cli("train.py", *QUICK, *LIGHT, "seed=7", f"hydra.run.dir={run_dir}")
    assert code == 0, err[-3000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    prov = record["provenance"]
    assert prov["seed"] == 7 and prov["device"] == "cpu" and prov["host"] == socket.gethostname()
    assert prov["versions"]["torch"] == metadata.version("torch") and prov["versions"]["litlab"]
    assert set(prov["versions"]) >= {"python", "lightning", "hydra-core"} and len(prov["data"]["sha256"]) == 64
    if shutil.which("git") and (ROOT / ".git").exists():
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert prov["git"]["commit"] == head.stdout.strip() and isinstance(prov["git"]["dirty"], bool)

    code, out, err = cli("litlab", "reproduce", str(run_dir), "--into", str(again))  # its run is a new process
    assert code == 0, out[-2000:] + err[-2000:]
    assert f"reproduced exactly: {again}" in out
    result = json.loads((again / "reproduce.json").read_text())
    assert result["agrees"] and result["tolerance"] == 0 and result["config_differences"] == []
    assert {r["metric"] for r in result["metrics"]} >= {"val/loss", "test/acc"}
    assert all(r["recorded"] == r["reproduced"] for r in result["metrics"])


def test_reproduce_refuses_a_dir_without_a_finished_run_in_one_line(tmp_path):
    proc = subprocess.run([*LITLAB, "reproduce", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith("Error: ") and "Traceback" not in proc.stderr


RECORD = {"val": {"val/loss": 0.25, "val/acc": 0.9}, "test": {"test/loss": 0.3, "test/acc": 0.875}}


@pytest.mark.parametrize(
    ("again", "says"),
    [
        ({"val": {"val/loss": 0.25, "val/acc": 0.9}, "test": {"test/loss": 0.3, "test/acc": 0.875}},
         "reproduced exactly: NEW"),
        ({"val": {"val/loss": 0.25, "val/acc": 0.9}, "test": {"test/loss": 0.3, "test/acc": 0.8750001}},
         "NOT reproduced exactly: 1 of 4 metrics differ or are missing: NEW"),
        ({"val": {"val/loss": 0.25, "val/acc": 0.9}, "test": {"test/loss": 0.3}},  # one missing here
         "NOT reproduced exactly: 1 of 4 metrics differ or are missing: NEW"),
        ({**RECORD, "test": {**RECORD["test"], "test/f1": 0.8}},  # one missing in the record
         "NOT reproduced exactly: 1 of 5 metrics differ or are missing: NEW"),
        ({}, "NOT reproduced exactly: 4 of 4 metrics differ or are missing: NEW"),
    ],
    ids=["same", "one-differs", "missing-again", "missing-in-record", "none-again"],
)  # fmt: skip
def test_reproduced_is_said_only_when_every_metric_of_both_runs_agrees(again, says):
    recorded, reproduced = RunRecord("completed", **RECORD), RunRecord("completed", **again)
    rows = reproduce.metric_rows(recorded, reproduced, tolerance=0.0)
    result = {"agrees": bool(rows) and all(r["agrees"] for r in rows), "config_differences": [],
              "provenance_differences": []}  # fmt: skip
    text = reproduce.verdict(result, rows, 0.0, Path("NEW"))
    assert text.splitlines()[-1] == says
    assert text.splitlines()[0].split() == ["metric", "recorded", "reproduced", "agrees"]  # the table's header
    assert ("DIFFERS" in text) != result["agrees"]


@pytest.mark.slow
def test_a_metric_the_rerun_has_and_the_record_lacks_is_not_reproduced(tmp_path, cli):
    run_dir, again = tmp_path / "run", tmp_path / "again"
    code, _, err = cli("train.py", *QUICK, f"hydra.run.dir={run_dir}")
    assert code == 0, err[-3000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    del record["test"]["test/acc"]  # a record written by an older litlab, or edited
    (run_dir / "metrics.json").write_text(json.dumps(record))
    cmd = [*LITLAB, "reproduce", str(run_dir), "--into", str(again)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-1].startswith("NOT reproduced exactly: 1 of")
    (row,) = [line.split() for line in proc.stdout.splitlines() if line.startswith("test/acc ")]
    assert row[:2] == ["test/acc", "missing"] and row[-1] == "DIFFERS", row  # recorded: missing; reproduced: a value
