"""A user error on the command line: one line naming the key, exit code 2, no traceback, and
nothing of an earlier run touched."""

import hashlib
import os

import pytest
import torch

from litlab.errors import USER_ERROR_EXIT
from tests.helpers.crafted import crafted_checkpoint
from tests.helpers.doors import Form, Refusal, assert_refused, zero_byte_files

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


TRAIN, RESUME, CSV = "train.py", "train.py ckpt_path=", "train.py data=csv"
EVAL, PREDICT = "evaluate.py ckpt_path=", "predict.py ckpt_path="

# Bad settings and files on the command line: every row is one line naming the key, exit 2, nothing trained.
REFUSALS: list[Refusal] = [
    Refusal(TRAIN, "optimizer.lr", Form.WRONG_TYPE, "optimizer.lr", ("optimizer.lr=abc",)),
    Refusal(TRAIN, "optimizer.lr", Form.OUT_OF_RANGE, "optimizer.lr", ("optimizer.lr=-1",)),
    Refusal(TRAIN, "optimizer.momentum", Form.OUT_OF_RANGE, "optimizer", ("optimizer=sgd", "optimizer.momentum=-1")),
    Refusal(TRAIN, "seed", Form.WRONG_TYPE, "seed", ("seed=notanint",)),
    Refusal(TRAIN, "seed", Form.WRONG_TYPE, "seed", ("seed=1.5",)),
    Refusal(TRAIN, "seed", Form.OUT_OF_RANGE, "seed=-1 is invalid", ("seed=-1",)),
    Refusal(TRAIN, "seed", Form.OUT_OF_RANGE, "seed=4294967296 is invalid", ("seed=4294967296",)),
    Refusal(TRAIN, "data.batch_size", Form.WRONG_TYPE, "data.batch_size", ("data.batch_size=1.5",)),
    Refusal(TRAIN, "data.batch_size", Form.OUT_OF_RANGE, "data.batch_size", ("data.batch_size=0",)),
    Refusal(TRAIN, "data.split", Form.OUT_OF_RANGE, "data.split", ("data.split=[0.5,0.2,0.2]",)),
    Refusal(TRAIN, "data.scaling", Form.OUT_OF_RANGE, "data.scaling", ("data.scaling=zscore",)),
    Refusal(TRAIN, "data.device", Form.OUT_OF_RANGE, "data.device", ("data.device=tpu",)),
    Refusal(TRAIN, "data.num_folds", Form.OUT_OF_RANGE, "data.num_folds", ("data.num_folds=1",)),
    Refusal(TRAIN, "model.activation", Form.OUT_OF_RANGE, "model.activation", ("model.activation=swish",)),
    Refusal(TRAIN, "model.dropout", Form.OUT_OF_RANGE, "model.dropout", ("model.dropout=1.5",)),
    Refusal(TRAIN, "model.loss", Form.OUT_OF_RANGE, "model.loss", ("model.loss=huber",)),
    Refusal(TRAIN, "+model.KEY", Form.OUT_OF_RANGE, "model", ("+model.width=3",)),
    Refusal(TRAIN, "model", Form.WRONG_SHAPE, "model=logistic_regression",
            ("data=diabetes", "model=logistic_regression")),
    Refusal(TRAIN, "model", Form.WRONG_SHAPE, "model=cnn", ("data=breast_cancer", "model=cnn")),
    Refusal(TRAIN, "model.C", Form.OUT_OF_RANGE, "model.C", ("model=logistic_regression", "model.C=0")),
    Refusal(TRAIN, "model.freeze_epochs", Form.WRONG_TYPE, "model.freeze_epochs='abc' is invalid",
            ("model.freeze_epochs=abc",)),
    Refusal(TRAIN, "model.freeze_epochs", Form.OUT_OF_RANGE, "model.freeze_epochs=-1 is invalid",
            ("model.freeze_epochs=-1",)),
    Refusal(TRAIN, "model.freeze_epochs", Form.WRONG_SHAPE, "model.freeze_epochs=2: this model has no layers below",
            ("model=logistic_regression", "model.freeze_epochs=2")),
    Refusal(TRAIN, "model.freeze_epochs", Form.OUT_OF_RANGE, "model.freeze_epochs=1 needs an optimizer that takes",
            ("optimizer=lbfgs", "model.freeze_epochs=1")),
    Refusal(TRAIN, "model.ema", Form.OUT_OF_RANGE, "model.ema=1.5 is invalid", ("model.ema=1.5",)),
    Refusal(TRAIN, "model.arch", Form.OUT_OF_RANGE, "model.arch='vgg11' is invalid",
            ("model=backbone", "model.arch=vgg11")),
    Refusal(TRAIN, "model.weights", Form.OUT_OF_RANGE, "is neither a file nor a weight of resnet18",
            ("model=backbone", "model.weights=IMAGENET9K_V9")),
    Refusal(TRAIN, "model.image_size", Form.OUT_OF_RANGE, "model.image_size=5 is invalid",
            ("model=backbone", "model.image_size=5")),
    Refusal(TRAIN, "model", Form.WRONG_SHAPE, "model=backbone", ("data=breast_cancer", "model=backbone")),
    Refusal(TRAIN, "model.ema", Form.WRONG_TYPE, "model.ema='abc' is invalid", ("model.ema=abc",)),
    Refusal(TRAIN, "model.init_from", Form.MISSING, "model.init_from", ("model.init_from={missing}",)),
    Refusal(TRAIN, "model.init_from", Form.CRAFTED, "model.init_from", ("model.init_from={evil}",)),
    Refusal(TRAIN, "monitor.metric", Form.OUT_OF_RANGE, "monitor.metric", ("monitor.metric=val/auroc",)),
    Refusal(TRAIN, "monitor.mode", Form.OUT_OF_RANGE, "monitor.mode", ("monitor.mode=up",)),
    Refusal(TRAIN, "trainer.max_epochs", Form.WRONG_TYPE, "trainer.max_epochs", ("trainer.max_epochs=abc",)),
    Refusal(TRAIN, "trainer.precision", Form.OUT_OF_RANGE, "trainer", ("trainer.precision=17",)),
    Refusal(RESUME, "ckpt_path", Form.CORRUPT, "ckpt_path", ("ckpt_path={text}",)),
    Refusal(RESUME, "ckpt_path", Form.MISSING, "ckpt_path", ("ckpt_path={missing}",)),
    Refusal(RESUME, "ckpt_path", Form.CRAFTED, "ckpt_path", ("ckpt_path={evil}",)),
    Refusal(RESUME, "ckpt_path=latest", Form.EMPTY, "ckpt_path", ("ckpt_path=latest", "paths.log_dir={empty}")),
    Refusal(RESUME, "ckpt_path", Form.WRONG_TYPE, "ckpt_path", ("ckpt_path=s3://bucket/x.ckpt",)),
    Refusal(TRAIN, "hydra.run.dir", Form.WRONG_TYPE, "hydra.run.dir", ("hydra.run.dir={file}/run",)),
    Refusal(TRAIN, "paths.log_dir", Form.WRONG_TYPE, "paths.log_dir", ("paths.log_dir={file}/logs",)),
    Refusal(TRAIN, "hydra.run.dir", Form.DUPLICATE, "hydra.run.dir", ("hydra.run.dir={run}",)),
    Refusal(CSV, "data.path", Form.MISSING, "data.path", ("data=csv", "data.path={missing}", "data.target=y")),
    Refusal(CSV, "data.target", Form.MISSING, "data.target", ("data=csv", "data.path={csv}", "data.target=label")),
    Refusal(EVAL, "ckpt_path", Form.MISSING, "ckpt_path", ("ckpt_path={missing}",)),
    Refusal(EVAL, "ckpt_path", Form.CORRUPT, "ckpt_path", ("ckpt_path={text}",)),
    Refusal(EVAL, "ckpt_path", Form.CRAFTED, "ckpt_path", ("ckpt_path={evil}",)),
    Refusal(PREDICT, "ckpt_path", Form.CRAFTED, "ckpt_path", ("ckpt_path={evil}", "input={csv}")),
    Refusal(PREDICT, "ckpt_path", Form.MISSING, "ckpt_path", ("ckpt_path={missing}", "input={csv}")),
]
NO_GPU = Refusal(TRAIN, "trainer.accelerator", Form.OUT_OF_RANGE, "trainer.accelerator=cpu",
                 ("trainer.accelerator=gpu", "data=csv", "data.path=no_such.csv"))  # said before the data is read
REFUSALS.append(NO_GPU)  # in the table on every machine; run only where no GPU is usable


@pytest.mark.parametrize("row", REFUSALS, ids=[" ".join(r.args) for r in REFUSALS])
def test_a_user_error_is_one_line_naming_the_key(cli, inputs, tmp_path, row):
    if row is NO_GPU and torch.cuda.is_available():
        pytest.skip("a GPU is usable here: trainer.accelerator=gpu is no error")
    script, args = row.door.split()[0], row.args
    log_dir = [] if any("log_dir" in a for a in args) else [f"paths.log_dir={tmp_path}"]
    quiet = QUIET if script != "predict.py" else []  # predict.py has no trainer
    code, out, err = cli(script, *[a.format(**inputs) for a in args], *log_dir, *quiet)
    assert_refused(code, out, err, row.says)
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


@pytest.mark.e2e
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


def test_a_boolean_given_a_word_is_refused_and_a_run_giving_none_a_word_composes_its_config_once():
    """Through the run's own config (its config sources recorded): `extras.print_config=no` is
    refused, while a command line whose words all go to non-boolean keys is let through without
    composing the config a second time."""
    from hydra import compose, initialize_config_dir

    from litlab.errors import UserError
    from litlab.run.booleans import boolean_keys, check_booleans
    from tests.helpers.config import CONF

    others = ["data=csv", "data.path=x.csv", "data.target=y", "optimizer.lr=0.1", "model=logistic_regression"]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        refused = compose("train", [*others, "extras.print_config=no"], return_hydra_config=True)
        with pytest.raises(UserError, match=r"^extras\.print_config='no' is invalid: give true or false"):
            check_booleans(refused)
        plain = compose("train", others, return_hydra_config=True)
        before = boolean_keys.cache_info()
        check_booleans(plain)
        assert boolean_keys.cache_info() == before


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
