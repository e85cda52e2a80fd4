"""The figures the guides quote beside their commands are what those commands give
(scripts/tools/check_figures.py): the documented tables read right, and, in the slow suite, every
command that needs no downloaded data run again and compared."""

import importlib.util
import subprocess
import sys

import pytest

from tests.helpers.config import ROOT

spec = importlib.util.spec_from_file_location("check_figures", ROOT / "scripts" / "tools" / "check_figures.py")
check_figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_figures)


def test_the_results_tables_are_read_as_commands_and_their_figures():
    claims = {" ".join(c.args): c for c in check_figures.claims([ROOT / "docs" / "results.md"])}
    default = claims["model=mlp"]
    assert default.runnable and set(default.figures) == {"test/acc", "test/f1"}
    assert claims["experiment=diabetes_linear"].figures["test/mse"].count(".") == 1
    assert not claims["experiment=mnist_fast data.data_dir=DIR seed=0"].runnable  # the user's own files
    assert len([c for c in claims.values() if c.runnable]) >= 13


@pytest.mark.parametrize(
    ("got", "tolerance", "agrees"),
    [(0.97775, 0.0, True), (0.9815, 0.0, False), (0.9815, 0.01, True), (0.9615, 0.01, False)],
)
def test_a_figure_agrees_at_its_documented_precision_or_within_the_tolerance(got, tolerance, agrees):
    claim = check_figures.Claim("docs/x.md:1", ("model=mlp",), {"test/acc": "0.9778"})
    [(_, documented, shown, said)] = check_figures.verdicts(claim, {"test/acc": got}, tolerance)
    assert documented == "0.9778" and shown == f"{got:.4f}" and said is agrees


@pytest.mark.slow  # 13 commands, each a new process: ~3 min
def test_every_documented_figure_is_what_its_command_gives_within_a_cpu_s_rounding():
    """Within 0.01: another CPU may end a test row or two apart (the tool's docstring)."""
    cmd = [sys.executable, "scripts/tools/check_figures.py", "--skip", "mnist", "--tolerance", "0.01"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("  same") >= 26 and "every documented figure agrees" in proc.stdout
