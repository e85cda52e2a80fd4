"""The hostile-input table of a run's own settings: evaluate.py's arguments (besides loading ckpt_path),
train.py's range test (tune.*), its MLflow store, every boolean setting, and where a run writes
(paths.log_dir, hydra.run.dir): each broken one is one `Error:` line naming it, exit 2, before
training, and nothing an earlier run wrote is touched."""

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.helpers.config import SHRINK, compose_cfg
from tests.helpers.disks import fill, mount, read_only, unmount
from tests.helpers.doors import Form, Refusal, as_params, assert_refused_on_disks

EVAL, TUNE, MLFLOW = "evaluate.py", "train.py tune=lr_find", "train.py logger=mlflow"
TRAIN, SWEEP = "train.py", "train.py -m"
CKPT = "ckpt_path={ckpt}"
STORE = ("logger=mlflow", "hydra.callbacks.mlflow_store.wait_s=0.1")  # a locked store refused at once

REFUSALS: list[Refusal] = [
    # evaluate.py: the split, calibration, where the data is now, and the data itself
    Refusal(EVAL, "split", Form.OUT_OF_RANGE, "split='train' is not a split", (CKPT, "split=train")),
    Refusal(EVAL, "split", Form.EMPTY, "split='' is not a split", (CKPT, "split=''")),
    Refusal(EVAL, "split", Form.WRONG_TYPE, "split=['test'] is not a split", (CKPT, "split=[test]")),
    Refusal(EVAL, "calibrate", Form.WRONG_TYPE, "calibrate='no' is invalid: give true or false",
            (CKPT, "calibrate=no")),
    Refusal(EVAL, "calibrate", Form.OUT_OF_RANGE, "calibrate=1 is invalid: give true or false", (CKPT, "calibrate=1")),
    Refusal(EVAL, "calibrate", Form.MISSING, "calibrate=None is invalid: give true or false", (CKPT, "calibrate=null")),
    Refusal(EVAL, "data.path", Form.MISSING, "data.path='{tmp}/nope.csv': no such file",
            (CKPT, "data.path={tmp}/nope.csv")),
    Refusal(EVAL, "data.path", Form.EMPTY, "empty.csv changed since training", (CKPT, "data.path={empty_csv}")),
    Refusal(EVAL, "data.path", Form.TRUNCATED, "half.csv changed since training", (CKPT, "data.path={half_csv}")),
    Refusal(EVAL, "data.path", Form.WRONG_TYPE, "data.path='{tmp}'", (CKPT, "data.path={tmp}")),
    Refusal(EVAL, "+data.KEY", Form.OUT_OF_RANGE, "data.seed cannot be changed when evaluating",
            (CKPT, "+data.seed=1")),
    Refusal(EVAL, "+data.KEY", Form.WRONG_TYPE, "data.nope is not a setting of CSVDataModule", (CKPT, "+data.nope=1")),
    Refusal(EVAL, "training data", Form.MISSING, "data.path: the training data {tmp}/gone.csv is gone",
            ("ckpt_path={gone_ckpt}",)),
    Refusal(EVAL, "training data", Form.CORRUPT, "edited.csv changed since training", ("ckpt_path={edited_ckpt}",)),
    # train.py tune=lr_find: the range test's settings, before it runs
    Refusal(TUNE, "tune.min_lr", Form.WRONG_TYPE, "tune.min_lr='abc' is invalid", ("tune=lr_find", "tune.min_lr=abc")),
    Refusal(TUNE, "tune.min_lr", Form.NON_FINITE, "tune.min_lr=nan is invalid", ("tune=lr_find", "tune.min_lr=nan")),
    Refusal(TUNE, "tune.min_lr", Form.OUT_OF_RANGE, "give 0 < min_lr < max_lr", ("tune=lr_find", "tune.min_lr=0")),
    Refusal(TUNE, "tune.max_lr", Form.NON_FINITE, "tune.max_lr=inf is invalid", ("tune=lr_find", "tune.max_lr=inf")),
    Refusal(TUNE, "tune.max_lr", Form.OUT_OF_RANGE, "give 0 < min_lr < max_lr", ("tune=lr_find", "tune.max_lr=1e-7")),
    Refusal(TUNE, "tune.num_training", Form.TOO_FEW, "tune.num_training=5", ("tune=lr_find", "tune.num_training=5")),
    Refusal(TUNE, "tune.num_training", Form.WRONG_TYPE, "tune.num_training=10.5",
            ("tune=lr_find", "tune.num_training=10.5")),
    Refusal(TUNE, "tune.suggestion", Form.OUT_OF_RANGE, "tune.suggestion='best' is invalid",
            ("tune=lr_find", "tune.suggestion=best")),
    Refusal(TUNE, "tune.apply", Form.WRONG_TYPE, "tune.apply='yes' is invalid: give true or false",
            ("tune=lr_find", "tune.apply=yes")),
    Refusal(TUNE, "tune.KEY", Form.WRONG_TYPE, "tune.rate is not a setting of RangeTest",
            ("tune=lr_find", "+tune.rate=1")),
    # train.py logger=mlflow: a store no run could log to, before any job
    Refusal(MLFLOW, "logger.mlflow.store", Form.LOCKED, "cannot be written: database is locked",
            (*STORE, "logger.mlflow.store={locked_db}")),
    Refusal(MLFLOW, "logger.mlflow.store", Form.READ_ONLY, "cannot be written: attempt to write a readonly database",
            (*STORE, "logger.mlflow.store={ro}/mlflow.db")),
    Refusal(MLFLOW, "logger.mlflow.store", Form.CORRUPT, "cannot be written: file is not a database",
            (*STORE, "logger.mlflow.store={garbage_db}")),
    Refusal(MLFLOW, "logger.mlflow.store", Form.WRONG_TYPE, "logger.mlflow.store='{tmp}' cannot be written",
            (*STORE, "logger.mlflow.store={tmp}")),
    # every boolean setting: true or false, on the command line and in a sweep
    Refusal(TRAIN, "extras.print_config", Form.WRONG_TYPE, "extras.print_config='yes' is invalid: give true or false",
            ("extras.print_config=yes",)),
    Refusal(TRAIN, "extras.traceback", Form.WRONG_TYPE, "extras.traceback='no' is invalid", ("extras.traceback=no",)),
    Refusal(TRAIN, "trainer.enable_progress_bar", Form.OUT_OF_RANGE, "trainer.enable_progress_bar=0 is invalid",
            ("trainer.enable_progress_bar=0",)),
    Refusal(TRAIN, "trainer.deterministic", Form.WRONG_TYPE, "trainer.deterministic='sometimes' is invalid",
            ("trainer.deterministic=sometimes",)),
    Refusal(TRAIN, "model.compile", Form.EMPTY, "model.compile='' is invalid", ("model.compile=''",)),
    Refusal(TRAIN, "model.channels_last", Form.WRONG_TYPE, "model.channels_last='on' is invalid",
            ("model=cnn", "model.channels_last=on")),
    Refusal(SWEEP, "model.batch_norm", Form.WRONG_TYPE, "model.batch_norm='perhaps' is invalid",
            ("-m", "model.batch_norm=true,perhaps")),
    Refusal("predict.py ckpt_path=", "extras.print_config", Form.WRONG_TYPE, "extras.print_config='maybe' is invalid",
            (CKPT, "input={tmp}/data.csv", "extras.print_config=maybe")),
    Refusal("export.py", "extras.traceback", Form.WRONG_TYPE, "extras.traceback='maybe' is invalid",
            (CKPT, "extras.traceback=maybe")),
    Refusal("serve.py", "extras.print_config", Form.WRONG_TYPE, "extras.print_config='off' is invalid",
            (CKPT, "extras.print_config=off")),
    # where the run writes
    Refusal(TRAIN, "hydra.run.dir", Form.READ_ONLY, "hydra.run.dir='{ro}/run' cannot be created: Read-only file system",
            ("hydra.run.dir={ro}/run",)),
    Refusal(TRAIN, "hydra.run.dir", Form.WRONG_TYPE, "cannot be created: Not a directory",
            ("hydra.run.dir={garbage_db}/run",)),
    Refusal(TRAIN, "hydra.run.dir", Form.FULL_DISK, "no space left on device writing {full}/run",
            ("hydra.run.dir={full}/run",)),
    Refusal(TRAIN, "hydra.run.dir", Form.DUPLICATE, "already holds a run", ("hydra.run.dir={ckpt_run}",)),
    Refusal(TRAIN, "paths.log_dir", Form.READ_ONLY, "(under paths.log_dir='{ro}/logs') cannot be created",
            ("paths.log_dir={ro}/logs",)),
    Refusal(TRAIN, "paths.log_dir", Form.WRONG_TYPE, "Set paths.log_dir= to a writable dir",
            ("paths.log_dir={garbage_db}/logs",)),
    Refusal(TRAIN, "paths.log_dir", Form.FULL_DISK, "no space left on device writing {full}/logs",
            ("paths.log_dir={full}/logs",)),
    Refusal(EVAL, "hydra.run.dir", Form.FULL_DISK, "no space left on device writing {full}/run",
            (CKPT, "hydra.run.dir={full}/run")),
    Refusal(EVAL, "hydra.run.dir", Form.READ_ONLY, "cannot be created: Read-only file system",
            (CKPT, "hydra.run.dir={ro}/run")),
]  # fmt: skip

WHERE = ("hydra.run.dir=", "hydra.sweep.dir=", "paths.log_dir=")  # a row that sets one writes nowhere else


def checkpoint_on(ckpt: Path, data: Path, to: Path) -> str:
    """A copy of `ckpt` trained (as far as it can tell) on `data`, an identical copy of its CSV: the
    checkpoint a run on `data` would have written."""
    state = torch.load(ckpt, weights_only=True)
    state["datamodule_hyper_parameters"]["path"] = str(data)
    for entry in state["CSVDataModule"]["fingerprint"]["files"]:
        entry["path"] = str(data)
    torch.save(state, to)
    return str(to)


def tiny_run(tmp: Path) -> dict[str, str]:
    """A 1-epoch MLP on a 120-row CSV (about a second), and the data files and checkpoints the rows name."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    data = tmp / "data.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": (x[:, 0] > 0).astype(int)}).to_csv(data, index=False)
    run = tmp / "run"
    from litlab.run.train import train  # here: collecting the table imports no torch

    best = Path(train(compose_cfg(run, "data=csv", f"data.path={data}", "data.target=y", "trainer.max_epochs=1",
                                  "model.hidden_sizes=[4]"))["best_ckpt"])  # fmt: skip
    (tmp / "empty.csv").write_text("")
    (tmp / "half.csv").write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    names = {"ckpt": str(best), "ckpt_run": str(run), "empty_csv": str(tmp / "empty.csv"),
             "half_csv": str(tmp / "half.csv")}  # fmt: skip
    for name in ("gone", "edited"):
        shutil.copy(data, tmp / f"{name}.csv")
        names[f"{name}_ckpt"] = checkpoint_on(best, tmp / f"{name}.csv", tmp / f"{name}.ckpt")
    (tmp / "gone.csv").unlink()
    with open(tmp / "edited.csv", "a") as f:
        f.write("0.1,0.2,0.3,1\n")
    return names


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Iterator[tuple[dict[str, str], Path]]:
    """Every `{name}` a row names: the tiny run, a locked and a garbage store, a read-only disk holding
    a store, a full disk (None where tmpfs cannot be mounted here)."""
    tmp = tmp_path_factory.mktemp("doors_run")
    names = {"tmp": str(tmp), **tiny_run(tmp)}
    (tmp / "garbage.db").write_bytes(b"not an SQLite database\n" * 40)
    sqlite3.connect(tmp / "locked.db").execute("CREATE TABLE experiments (name TEXT)").connection.close()
    holder = sqlite3.connect(tmp / "locked.db", isolation_level=None)  # another writer, mid-transaction
    holder.execute("BEGIN EXCLUSIVE")
    names |= {"garbage_db": str(tmp / "garbage.db"), "locked_db": str(tmp / "locked.db")}
    disks = tmp_path_factory.mktemp("disks")
    names["ro"] = names["full"] = ""
    if mount(disks / "ro"):
        shutil.copy(tmp / "locked.db", disks / "ro" / "mlflow.db")  # a store, on a disk that became read-only
        read_only(disks / "ro")
        names["ro"] = str(disks / "ro")
    if mount(disks / "full"):
        fill(disks / "full", leave=0)
        names["full"] = str(disks / "full")
    yield names, tmp
    holder.close()
    for disk in ("ro", "full"):
        unmount(disks / disk)


def command_line(row: Refusal, names: dict[str, str], tmp_path: Path) -> list[str]:
    """The row's arguments, then the shrunk run's (those the row does not set), and a fresh run and
    sweep dir unless the row says where to write."""
    args = [arg.format(**names) for arg in row.args]
    given = {arg.split("=")[0].lstrip("+") for arg in args}
    shrink = {EVAL: ["trainer=cpu"], TUNE: SHRINK, MLFLOW: SHRINK, TRAIN: SHRINK, SWEEP: SHRINK}.get(row.door, [])
    base = [o for o in shrink if o.split("=")[0] not in given]
    where = [f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    return [*args, *base, *([] if any(arg.startswith(WHERE) for arg in args) else where)]


@pytest.mark.parametrize("row", as_params(REFUSALS))
def test_a_hostile_setting_is_refused_in_one_line(files, cli, tmp_path, row):
    names, tmp = files
    assert_refused_on_disks(cli, row, command_line(row, names, tmp_path), names, tmp, on_disk=["mlflow.db"])
