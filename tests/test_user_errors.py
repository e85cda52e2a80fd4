"""A user error on the command line: one line naming the key, exit code 2, no traceback, and
nothing of an earlier run touched."""

import hashlib
import os

import pytest
import torch

from litlab.errors import USER_ERROR_EXIT
from tests.helpers.crafted import crafted_checkpoint
from tests.helpers.doors import zero_byte_files

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "extras.print_config=false"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Bad files to point at, and an earlier run's dir."""
    tmp = tmp_path_factory.mktemp("inputs")
    (tmp / "notes.txt").write_text("these are not weights\n")
    (tmp / "data.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    run = tmp / "earlier_run"
    run.mkdir()
    (run / "metrics.json").write_text('{"status": "completed"}')
    return {
        "text": str(tmp / "notes.txt"),
        "missing": str(tmp / "nope.ckpt"),
        "evil": crafted_checkpoint(tmp / "evil.ckpt", tmp / "marker"),
        "marker": str(tmp / "marker"),
        "file": str(tmp / "notes.txt"),
        "csv": str(tmp / "data.csv"),
        "run": str(run),
        "empty": str(tmp_path_factory.mktemp("empty_logs")),
    }


CASES = [
    # (script, arguments, the key the error must name)
    ("train.py", ["optimizer.lr=abc"], "optimizer.lr"),
    ("train.py", ["optimizer.lr=-1"], "optimizer.lr"),
    ("train.py", ["optimizer=sgd", "optimizer.momentum=-1"], "optimizer"),
    ("train.py", ["seed=notanint"], "seed"),
    ("train.py", ["seed=1.5"], "seed"),
    ("train.py", ["seed=-1"], "seed=-1 is invalid"),
    ("train.py", ["seed=4294967296"], "seed=4294967296 is invalid"),
    ("train.py", ["data.batch_size=1.5"], "data.batch_size"),
    ("train.py", ["data.batch_size=0"], "data.batch_size"),
    ("train.py", ["data.split=[0.5,0.2,0.2]"], "data.split"),
    ("train.py", ["data.scaling=zscore"], "data.scaling"),
    ("train.py", ["data.device=tpu"], "data.device"),
    ("train.py", ["data.num_folds=1"], "data.num_folds"),
    ("train.py", ["model.activation=swish"], "model.activation"),
    ("train.py", ["model.dropout=1.5"], "model.dropout"),
    ("train.py", ["model.loss=huber"], "model.loss"),
    ("train.py", ["+model.width=3"], "model"),
    ("train.py", ["data=diabetes", "model=logistic_regression"], "model=logistic_regression"),
    ("train.py", ["data=breast_cancer", "model=cnn"], "model=cnn"),
    ("train.py", ["model=logistic_regression", "model.C=0"], "model.C"),
    ("train.py", ["monitor.metric=val/auroc"], "monitor.metric"),
    ("train.py", ["monitor.mode=up"], "monitor.mode"),
    ("train.py", ["trainer.max_epochs=abc"], "trainer.max_epochs"),
    ("train.py", ["trainer.precision=17"], "trainer"),
    ("train.py", ["ckpt_path={text}"], "ckpt_path"),
    ("train.py", ["ckpt_path={missing}"], "ckpt_path"),
    ("train.py", ["ckpt_path={evil}"], "ckpt_path"),
    ("train.py", ["ckpt_path=latest", "paths.log_dir={empty}"], "ckpt_path"),
    ("train.py", ["ckpt_path=s3://bucket/x.ckpt"], "ckpt_path"),
    ("train.py", ["hydra.run.dir={file}/run"], "hydra.run.dir"),
    ("train.py", ["paths.log_dir={file}/logs"], "paths.log_dir"),
    ("train.py", ["hydra.run.dir={run}"], "hydra.run.dir"),
    ("train.py", ["data=csv", "data.path={missing}", "data.target=y"], "data.path"),
    ("train.py", ["data=csv", "data.path={csv}", "data.target=label"], "data.target"),
    ("evaluate.py", ["ckpt_path={missing}"], "ckpt_path"),
    ("evaluate.py", ["ckpt_path={text}"], "ckpt_path"),
    ("evaluate.py", ["ckpt_path={evil}"], "ckpt_path"),
    ("predict.py", ["ckpt_path={evil}", "input={csv}"], "ckpt_path"),
    ("predict.py", ["ckpt_path={missing}", "input={csv}"], "ckpt_path"),
]
if not torch.cuda.is_available():
    CASES.append(("train.py", ["trainer.accelerator=gpu"], "trainer.accelerator=cpu"))


@pytest.mark.parametrize(("script", "args", "key"), CASES, ids=[" ".join(c[1]) for c in CASES])
def test_a_user_error_is_one_line_naming_the_key(cli, inputs, tmp_path, script, args, key):
    log_dir = [] if any("log_dir" in a for a in args) else [f"paths.log_dir={tmp_path}"]
    quiet = QUIET if script != "predict.py" else []  # predict.py has no trainer
    code, out, err = cli(script, *[a.format(**inputs) for a in args], *log_dir, *quiet)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == USER_ERROR_EXIT, (out, err)
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert key in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert not list(tmp_path.rglob("*.ckpt")), "nothing was trained"
    assert not os.path.exists(inputs["marker"]), "the crafted checkpoint ran code"


def test_traceback_on_request(cli, tmp_path):
    code, _, err = cli("train.py", "seed=notanint", "extras.traceback=true", f"paths.log_dir={tmp_path}", *QUIET)
    assert code != 0 and "Traceback" in err and "seed='notanint' is invalid" in err


def test_the_crafted_checkpoint_would_run_code(inputs, tmp_path):
    """Guards the tests above: unpickled without weights_only, the file does make its dir."""
    marker = tmp_path / "made"
    torch.load(crafted_checkpoint(tmp_path / "x.ckpt", marker), weights_only=False)
    assert marker.is_dir()


def checksums(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def test_a_refused_rerun_leaves_the_earlier_run_byte_identical(cli, tmp_path):
    # Also what two runs started in the same microsecond meet: the same dated dir; the second is refused.
    run = tmp_path / "run"
    args = [f"hydra.run.dir={run}", "trainer.max_epochs=1", "trainer=cpu", "logger=csv", *QUIET]
    assert cli("train.py", *args)[0] == 0
    before = checksums(run)
    assert {".hydra/config.yaml", ".hydra/overrides.yaml", "train.log", "metrics.json"} <= set(before)
    code, _, err = cli("train.py", *args, "seed=7")
    assert code == USER_ERROR_EXIT and "already holds a run" in err
    assert checksums(run) == before


def test_ranks_started_together_share_the_run_dir_but_not_a_finished_one(tmp_path, monkeypatch):
    """Under torchrun or srun every rank starts at once: rank 0 may find another rank's Hydra
    files in the run dir already (allowed), but never an earlier run's checkpoints or metrics."""
    from litlab.run.run_dir import holds_a_run

    (tmp_path / ".hydra").mkdir()
    (tmp_path / "train.log").write_text("rank 1 was here first\n")
    assert holds_a_run(tmp_path)  # one process: anything there is an earlier run's
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not holds_a_run(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    assert holds_a_run(tmp_path)


ENTRY_POINTS = ("train", "eval", "predict", "serve", "export")


def given_as(defaults, key: str, word: str, value: object):
    """`defaults` as Hydra composes it for the override `key=word`: the value set, the override
    recorded (of Hydra's own config, only the parts the check reads)."""
    from omegaconf import OmegaConf, open_dict

    given = OmegaConf.masked_copy(defaults, [k for k in defaults if k != "hydra"])
    with open_dict(given):
        OmegaConf.update(given, key, value)
        given.hydra = {"runtime": {"choices": defaults.hydra.runtime.choices}, "overrides": {"task": [f"{key}={word}"]},
                       "job": {"config_name": defaults.hydra.job.config_name}}  # fmt: skip
    return given


@pytest.mark.parametrize("config_name", ENTRY_POINTS)
def test_every_boolean_setting_of_an_entry_point_takes_only_true_or_false(config_name):
    """Each key that is true or false in the entry point's own config, found by composing it (a new
    one is covered as soon as it is written): a word for it is refused naming the key, true and
    false pass. What the entry points' callback runs before Hydra writes anything."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from litlab.errors import UserError
    from litlab.run.booleans import boolean_paths, check_booleans
    from tests.helpers.config import CONF

    with initialize_config_dir(str(CONF), version_base="1.3"):
        defaults = compose(config_name, return_hydra_config=True)
        keys = sorted(k for k in boolean_paths(OmegaConf.to_container(defaults, resolve=False)) if k[:6] != "hydra.")
        assert {"extras.print_config", "extras.traceback"} <= set(keys)
        for key in keys:
            for word, value in (("no", "no"), ("null", None)):
                with pytest.raises(UserError, match=f"^{key}=.* is invalid: give true or false"):
                    check_booleans(given_as(defaults, key, word, value))
            check_booleans(given_as(defaults, key, "false", False))


@pytest.mark.parametrize(
    ("script", "args", "log"),
    [
        ("train.py", ["data=csv", "data.path={missing}", "data.target=y", *QUIET], "train.log"),
        ("evaluate.py", ["ckpt_path={missing}"], "evaluate.log"),
    ],
)
def test_a_run_refused_in_its_job_says_why_in_its_log(cli, inputs, tmp_path, script, args, log):
    """Hydra opens the job's log before litlab can refuse: the log holds the refusal, never nothing."""
    run = tmp_path / "run"
    code, _, err = cli(script, *[a.format(**inputs) for a in args], f"hydra.run.dir={run}")
    assert code == USER_ERROR_EXIT
    assert err.strip() in (run / log).read_text().splitlines()
    assert zero_byte_files(run) == []
