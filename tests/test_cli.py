"""The command line: `litlab VERB ...` runs every job and tool, the root scripts (`python train.py`)
the same functions, and both answer at once when nothing trains: no torch, Lightning or
scikit-learn is imported before Hydra has parsed the line, and `litlab --help` imports neither
Hydra nor torch (timings: scripts/benchmarks/cli_startup.py)."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from litlab.run import cli, commands, installed
from tests.helpers.config import ROOT
from tests.helpers.doors import assert_refused

HEAVY = ("torch", "lightning", "torchvision", "sklearn", "optuna")
LITLAB = str(Path(sys.executable).with_name("litlab"))  # the console script pip installs beside python
VERBS = ("train", "evaluate", "predict", "export", "serve", "report", "reproduce", "dashboard", "mlflow-ui")


def imported(args: list[str], **kw) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`python -X importtime ARGS`: the process, and every module it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, **kw)  # fmt: skip
    lines = proc.stderr.splitlines()
    return proc, {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time")}


@pytest.mark.parametrize("args", [["train.py", "--help"], ["train.py", "--cfg", "job"], ["train.py", "--info"],
                                  ["evaluate.py", "--help"], ["predict.py", "--help"], ["export.py", "--help"],
                                  ["serve.py", "--help"], [LITLAB, "train", "--help"],
                                  [LITLAB, "train", "--cfg", "job"], [LITLAB, "evaluate", "--help"],
                                  [LITLAB, "predict", "--help"], [LITLAB, "export", "--help"],
                                  [LITLAB, "serve", "--help"]])  # fmt: skip
def test_help_cfg_and_info_import_nothing_heavy(args):
    proc, modules = imported(args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert "ckpt_path" in proc.stdout  # it did answer


@pytest.mark.parametrize("args", [[], ["--help"]], ids=["alone", "--help"])
def test_litlab_lists_its_verbs_importing_neither_hydra_nor_torch(args):
    proc, modules = imported([LITLAB, *args])
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = [line.split()[0] for line in proc.stdout.split("verbs:\n")[1].split("\n\n")[0].splitlines()]
    assert listed == list(VERBS) == list(cli.VERBS)
    assert not modules & {*HEAVY, "hydra", "omegaconf", "numpy", "pandas"}, sorted(modules)


def test_an_unknown_verb_is_one_line_naming_the_nearest():
    proc = subprocess.run([LITLAB, "trian", "model=cnn"], capture_output=True, text=True, timeout=60)
    assert_refused(proc.returncode, proc.stdout, proc.stderr, "'trian' is no litlab verb; did you mean train?")


def test_a_verb_whose_extra_is_not_installed_says_how_to_install_it(monkeypatch, capsys):
    """A torch-free install (tests/test_install.py builds one) answers `litlab report` so; here the
    `train` extra is made to name a package no install has."""
    monkeypatch.setitem(installed.EXTRAS, "train", ("torch", "no_such_package_litlab"))
    with pytest.raises(SystemExit) as exit_:
        cli.main(["report", str(ROOT)])
    says = 'litlab report needs no_such_package_litlab, which this install lacks: pip install "litlab[train]"'
    assert_refused(exit_.value.code, "", capsys.readouterr().err, says)


# Every script with a command line; the modules they import once their arguments are parsed
# (scripts/benchmarks/throughput.py, image_folder_throughput.py) have none.
SCRIPTS = sorted(p.relative_to(ROOT / "scripts").as_posix() for p in (ROOT / "scripts").rglob("*.py"))
QUICK_HELP = [s for s in SCRIPTS if '__name__ == "__main__"' in (ROOT / "scripts" / s).read_text()]
PLAIN = "benchmarks/plain_mnist.py"  # the plain PyTorch reference: no functions, it trains when run


@pytest.mark.parametrize("script", QUICK_HELP)
def test_a_scripts_help_imports_nothing_heavy(script):
    proc, modules = imported([f"scripts/{script}", "--help"])
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr[-2000:]
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


@pytest.mark.parametrize("verb", ["report", "reproduce", "dashboard", "mlflow-ui"])
def test_a_tool_verbs_help_imports_nothing_heavy(verb):
    proc, modules = imported([LITLAB, verb, "--help"])
    assert proc.returncode == 0 and f"usage: litlab {verb}" in proc.stdout, proc.stderr[-2000:]
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def completion(line: str, *args: str) -> list[str]:
    """What Hydra's bash completion gets for the typed `line` from `ARGS -sc query=bash`."""
    env = {**os.environ, "COMP_LINE": line, "COMP_POINT": str(len(line))}
    proc = subprocess.run([*args, "-sc", "query=bash"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


def test_tab_completion_offers_the_options_of_a_group():
    assert completion("python train.py model=c", sys.executable, "train.py") == ["model=cnn"]


@pytest.mark.parametrize("line,args,offered", [("litlab train model=c", [LITLAB], ["model=cnn"]),
                                               ("litlab evaluate trainer=c", [LITLAB], ["trainer=cpu"]),
                                               ("litlab train model=c", [LITLAB, "train"], ["model=cnn"])],
                         ids=["train", "evaluate", "with-the-verb"])  # fmt: skip
def test_litlab_tab_completion_takes_the_verb_from_the_line(line, args, offered):
    """Hydra's bash function runs `litlab -sc query=bash`: the verb is in the line, not an override."""
    assert completion(line, *args) == offered


def test_litlab_tab_completion_offers_the_verbs_then_nothing_after_a_tool_verb():
    assert completion("litlab e", LITLAB) == ["evaluate", "export"]
    assert completion("litlab ", LITLAB) == list(VERBS)
    assert completion("litlab report lo", LITLAB) == []  # bash then completes file names


def test_bash_completes_litlab_train_as_a_user_types_it():
    """Hydra's own bash function, installed by `litlab train -sc install=bash`, in a real bash."""
    install = subprocess.run([LITLAB, "train", "-sc", "install=bash"], capture_output=True, text=True, timeout=120)
    assert install.returncode == 0 and install.stdout.rstrip().endswith("hydra_bash_completion litlab")
    typed = 'COMP_LINE="litlab train model=c"; COMP_WORDS=(litlab train model=c); COMP_CWORD=2; COMP_POINT=20'
    script = f'{install.stdout}\n{typed}\nhydra_bash_completion\necho "${{COMPREPLY[@]}}"'
    env = {**os.environ, "PATH": f"{Path(LITLAB).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["model=cnn"], proc.stdout + proc.stderr[-2000:]


@pytest.mark.parametrize("command,config", [(["train.py"], "train"), (["evaluate.py"], "eval"),
                                            ([LITLAB, "train"], "train")])  # fmt: skip
def test_fast_help_prints_what_hydras_own_help_prints(command, config):
    """litlab.run.cli_help answers --help without Hydra's; `-cn` sends the same request to Hydra's."""
    args = ["trainer.max_epochs=7", "--resolve"]
    ours, hydras = (
        subprocess.run(
            [sys.executable, *command, *extra, "--help", *args],
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
    assert "model: backbone, cnn, linear_regression, logistic_regression, mlp" in ours and "max_epochs: 7" in ours


def test_fast_help_with_a_bad_override_says_why_in_one_message():
    cmd = [sys.executable, "train.py", "--help", "model=nope"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "Could not find 'model/nope'" in proc.stderr and "mlp" in proc.stderr
    assert "_base" not in proc.stderr and "shared" not in proc.stderr  # Hydra lists only what can be chosen


def test_a_users_config_dir_adds_options_to_litlabs(tmp_path):
    """`--config-dir DIR`: DIR/model/my_mlp.yaml is `model=my_mlp`, built on litlab's own model/mlp.yaml
    (a run with it: tests/test_install.py)."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "my_mlp.yaml").write_text("defaults:\n  - mlp\n  - _self_\n\nhidden_sizes: [7, 5]\n")
    cmd = [LITLAB, "train", "--config-dir", str(tmp_path), "model=my_mlp", "--cfg", "job"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "_target_: litlab.models.MLP\n  hidden_sizes:\n  - 7\n  - 5\n" in proc.stdout


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s != PLAIN])
def test_every_script_still_imports(script, monkeypatch):
    """A script's imports and definitions run (not its main): a rename in src/ that a script
    still uses fails here, not when someone next runs the benchmark. As `python scripts/X.py`
    does, the script's own folder comes first on sys.path (a script may import a sibling)."""
    path = ROOT / "scripts" / script
    monkeypatch.syspath_prepend(str(path.parent))
    runpy.run_path(str(path), run_name="imported_by_test")


def test_train_help_shows_no_regression_loss_for_the_default_classifier():
    """`--help` shows the composed defaults: the MLP on digits trains with cross-entropy, and its
    loss reads as the task's own (null), not as a regression loss it does not use."""
    proc = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (loss,) = [line.strip() for line in proc.stdout.splitlines() if line.strip().startswith("loss:")]
    assert loss == "loss: null"


def test_a_ddp_rank_lightning_starts_from_a_litlab_verb_runs_that_verb(monkeypatch):
    """Lightning starts rank 1 as `litlab ARGS` (sys.argv without the verb) with LOCAL_RANK set;
    anything else without a verb is still refused as no verb."""
    monkeypatch.setenv(cli.RANKS_VERB, "train")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert cli.verb_and_arguments(["trainer=ddp", "seed=1"]) == ("train", ["trainer=ddp", "seed=1"])
    assert cli.verb_and_arguments(["evaluate", "ckpt_path=x"]) == ("evaluate", ["ckpt_path=x"])
    monkeypatch.delenv("LOCAL_RANK")
    assert cli.verb_and_arguments(["trainer=ddp"]) == ("trainer=ddp", [])


def with_huge_pages(value: str | None) -> dict[str, str]:
    """This process's environment with THP_MEM_ALLOC_ENABLE set to `value`, or unset (None)."""
    name = commands.HUGE_PAGES[0]
    env = {k: v for k, v in os.environ.items() if k != name}
    return env | ({name: value} if value is not None else {})


@pytest.mark.parametrize(("users", "expected"), [(None, "1"), ("0", "0")])
def test_a_verb_asks_pytorch_for_huge_pages_before_torch_is_imported(users, expected):
    """`litlab VERB` sets PyTorch's THP_MEM_ALLOC_ENABLE before anything imports torch (its CPU
    allocator reads it once); a value the user set stays."""
    code = ("import os, sys; from litlab.run.commands import run; run('train', ['--cfg', 'job']); "
            "print(os.environ.get('THP_MEM_ALLOC_ENABLE'), 'torch' in sys.modules)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env=with_huge_pages(users), timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == [expected, "False"]


THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
HUGE_KB = ("import re, torch; x = torch.ones(64 << 20, dtype=torch.uint8); "
           "print(re.search(r'AnonHugePages:\\s+(\\d+)', open('/proc/self/smaps_rollup').read())[1])")  # fmt: skip
MADVISE = THP.exists() and "[madvise]" in THP.read_text()


@pytest.mark.slow  # two fresh processes that import torch: ~9 s on 2 busy cores
@pytest.mark.skipif(not MADVISE, reason="needs transparent huge pages in madvise mode (only who asks gets them)")
def test_pytorch_backs_a_large_tensor_with_huge_pages_only_when_asked():
    """What HUGE_PAGES relies on: with THP_MEM_ALLOC_ENABLE=1 a 64 MB tensor is (partly) in 2 MB
    pages; without it, in none."""
    kb = {}
    for asked in ("1", None):
        proc = subprocess.run([sys.executable, "-c", HUGE_KB], capture_output=True, text=True,
                              env=with_huge_pages(asked), timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        kb[asked] = int(proc.stdout.split()[-1])
    assert kb["1"] >= 2048 and kb[None] == 0, kb
